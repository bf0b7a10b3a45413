import {expect} from 'chai'
import {execa} from 'execa'
import {createHash} from 'node:crypto'
import {chmod, cp, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import * as tar from 'tar'
import YAML from 'yaml'

import {checkConfig, configProblems, keepsUntagged, type ZotConfig} from '../../plugins/plugin-zot/src/config.js'
import {oneLineError} from '../support/assertions.js'
import {kod, ROOT} from '../support/kod.js'

/**
 * kod package-zot and deploy-zot (docs/zot.md), end to end, with --root into temporary directories.
 *
 * NO ZOT RUNS HERE. No zot binary can be had on the machines these tests run on, so every test puts a
 * STAND-IN in the binary slot: a small shell script (written below) that answers `--version` with a
 * made-up version (v0.0.0-standin) and `verify` by checking the config is JSON naming distSpecVersion,
 * logging how it was called. What is tested is kod's side: the bundle, its verification, the files
 * installed (config in zot's documented format, hardened unit, owners, modes), the steps printed, and the
 * refusals. Nothing here claims zot accepted the config or served anything.
 */
const STAND_IN_ZOT = `#!/bin/sh
# STAND-IN FOR ZOT in kod's tests: NOT zot. Answers --version and verify the way zot's CLI does.
[ -n "$ZOT_STANDIN_LOG" ] && echo "$*" >> "$ZOT_STANDIN_LOG"
case "$1" in
  -v|--version) echo '{"level":"info","distribution-spec":"1.1.1","commit":"v0.0.0-standin","binary-type":"stand-in","message":"version"}' ;;
  verify)
    [ "$2" = "--help" ] && { printf 'verify validates a zot config file (stand-in)\\n\\nUsage:\\n  zot verify <config> [flags]\\n'; exit 0; }
    [ -n "$ZOT_STANDIN_REFUSE" ] && { echo '{"level":"error","message":"invalid config file (stand-in refusing on purpose)"}' >&2; exit 1; }
    node -e 'const c = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")); if (!c.distSpecVersion) process.exit(1)' "$2" ;;
  *) echo 'usage: zot [command] (stand-in)' >&2; exit 1 ;;
esac
`
const STAND_IN_ZLI = '#!/bin/sh\n# STAND-IN FOR ZLI in kod\'s tests: NOT zli.\necho "zli stand-in: $*"\n'

// A bcrypt hash as `htpasswd -nbB` writes it; no test needs its password.
const BCRYPT = '$2y$05$BhDMSUUsySJ6F6YmNXHUK.ZlMkBYPA4Yw1a4GAG8yTKxMMyd9/0oK'

async function has(command: string): Promise<boolean> {
  return (await execa('sh', ['-c', `command -v ${command}`], {reject: false})).exitCode === 0
}

const sha256 = async (file: string): Promise<string> => createHash('sha256').update(await readFile(file)).digest('hex')

/** Every path below dir (relative), sorted: what a run left there. */
async function tree(dir: string): Promise<string[]> {
  return (await readdir(dir, {recursive: true})).sort()
}

describe('kod package-zot / deploy-zot (e2e, with a stand-in for zot)', function () {
  let work: string
  let bundle: string
  let signed: string
  let log: string
  const file = (name: string): string => path.join(work, name)
  const freshRoot = async (name: string): Promise<string> => {
    const dir = file(name)
    await mkdir(dir)
    return dir
  }

  before(async function () {
    work = await mkdtemp(path.join(os.tmpdir(), 'kod-zot-e2e-'))
    log = file('stand-in.log')
    await writeFile(file('zot'), STAND_IN_ZOT)
    await writeFile(file('zli'), STAND_IN_ZLI)
    await chmod(file('zot'), 0o755)
    await chmod(file('zli'), 0o755)
    await execa('openssl', ['genpkey', '-algorithm', 'ed25519', '-out', file('key.pem')])
    await execa('openssl', ['pkey', '-in', file('key.pem'), '-pubout', '-out', file('key.pub')])
    await execa('openssl', ['genpkey', '-algorithm', 'ed25519', '-out', file('other.pem')])
    await execa('openssl', ['pkey', '-in', file('other.pem'), '-pubout', '-out', file('other.pub')])
    await execa('openssl', ['req', '-x509', '-newkey', 'ed25519', '-nodes', '-keyout', file('server.key'), '-out', file('server.crt'), '-days', '1', '-subj', '/CN=zot.lab'])
    await writeFile(file('htpasswd'), `alice:${BCRYPT}\nbob:${BCRYPT.replace('$2y$', '$2b$')}\n`)
    bundle = file('zot.kodbundle')
    signed = file('signed.kodbundle')
    const made = await kod(['package-zot', '--zot-binary', file('zot'), '--zli-binary', file('zli'), '-o', bundle], {cwd: work})
    expect(made.exitCode, made.stderr).to.equal(0)
    const madeSigned = await kod(['package-zot', '--zot-binary', file('zot'), '-o', signed, '--sign-key', file('key.pem')], {cwd: work})
    expect(madeSigned.exitCode, madeSigned.stderr).to.equal(0)
  })

  after(async function () {
    if (work) await rm(work, {recursive: true, force: true})
  })

  describe('package-zot', function () {
    it('writes a bundle: kod-bundle.yaml, SHA256SUMS, the binaries (executable), the config template and the unit', async function () {
      const entries = new Map<string, {mode: number; data: Buffer}>()
      await tar.list({
        file: bundle,
        onReadEntry(entry) {
          const chunks: Buffer[] = []
          entry.on('data', (chunk: Buffer) => chunks.push(chunk))
          entry.on('end', () => entries.set(entry.path, {mode: entry.mode ?? 0, data: Buffer.concat(chunks)}))
        },
      })
      expect([...entries.keys()]).to.deep.equal(['kod-bundle.yaml', 'SHA256SUMS', 'bin/zli', 'bin/zot', 'zot/config.json', 'zot/zot.service'])
      expect(entries.get('bin/zot')!.mode & 0o111).to.not.equal(0)
      const manifest = YAML.parse(entries.get('kod-bundle.yaml')!.data.toString())
      expect(manifest).to.include({apiVersion: 'kod.dev/v1', kind: 'ZotBundle', bundleFormat: 1, name: 'zot', version: 'v0.0.0-standin'})
      const zot = manifest.binaries.find((binary: {name: string}) => binary.name === 'zot')
      expect(zot).to.include({file: 'bin/zot', sha256: await sha256(file('zot')), version: 'v0.0.0-standin', verify: true})
      // A script has no platform kod can read, and the manifest says why.
      expect(zot).to.not.have.property('platform')
      expect(zot.note).to.match(/script/)
      const zli = manifest.binaries.find((binary: {name: string}) => binary.name === 'zli')
      expect(zli).to.include({file: 'bin/zli', sha256: await sha256(file('zli'))})
      expect(zli).to.not.have.property('version')
      // SHA256SUMS lists every file, as sha256sum -c reads it.
      const sums = entries.get('SHA256SUMS')!.data.toString()
      for (const name of ['bin/zot', 'bin/zli', 'zot/config.json', 'zot/zot.service', 'kod-bundle.yaml']) expect(sums).to.match(new RegExp(`^[0-9a-f]{64}  ${name}$`, 'm'))
      const template = JSON.parse(entries.get('zot/config.json')!.data.toString()) as ZotConfig
      expect(checkConfig(template)).to.deep.equal([])
      expect(template.http).to.deep.equal({address: '0.0.0.0', port: '5000'})
    })

    it('signs the bundle with --sign-key (SHA256SUMS.sig), and says the stand-in is a script', async function () {
      const names: string[] = []
      await tar.list({file: signed, onReadEntry: (entry) => void names.push(entry.path)})
      expect(names.slice(0, 3)).to.deep.equal(['kod-bundle.yaml', 'SHA256SUMS', 'SHA256SUMS.sig'])
      const again = await kod(['package-zot', '--zot-binary', file('zot'), '-o', file('again.kodbundle')], {cwd: work})
      expect(again.stderr).to.match(/^Warning: zot .*a script \(#!\)/m)
      expect(again.stdout).to.match(/again\.kodbundle: zot v0\.0\.0-standin, \(platform unknown\)/)
    })

    it('another program given as zot (a distribution registry) is said to report no zot version, and zot verify is not run on it', async function () {
      const dir = await freshRoot('not-zot')
      const notZot = path.join(dir, 'zot-linux-amd64')
      await cp('/usr/bin/docker-registry', notZot)
      const made = await kod(['package-zot', '--zot-binary', notZot, '-o', path.join(dir, 'b.kodbundle')], {cwd: dir})
      expect(made.exitCode, made.stderr).to.equal(0)
      expect(made.stderr).to.match(/^Warning: zot .*reported no zot version \(recorded as unknown\): is it zot\?/m)
      let manifest: {binaries: Array<{name: string; version?: string; verify?: boolean}>} | undefined
      await tar.list({
        file: path.join(dir, 'b.kodbundle'),
        onReadEntry(entry) {
          const chunks: Buffer[] = []
          entry.on('data', (chunk: Buffer) => chunks.push(chunk))
          if (entry.path === 'kod-bundle.yaml') entry.on('end', () => void (manifest = YAML.parse(Buffer.concat(chunks).toString())))
        },
      })
      const zot = manifest!.binaries.find((binary) => binary.name === 'zot')!
      expect(zot.version).to.equal(undefined)
      // The registry says `Error: unknown command "verify"`: that is no zot verify.
      expect(zot.verify).to.equal(false)
      const root = await freshRoot('not-zot-root')
      const deployed = await kod(['deploy-zot', '-c', path.join(dir, 'b.kodbundle'), '--root', root], {cwd: dir})
      expect(deployed.exitCode, deployed.stderr).to.equal(0)
      expect(deployed.stderr + deployed.stdout).to.not.match(/zot verify accepted/)
    })

    it('names the default file after the version, in the current directory', async function () {
      const dir = await freshRoot('default-name')
      const made = await kod(['package-zot', '--zot-binary', file('zot')], {cwd: dir})
      expect(made.exitCode, made.stderr).to.equal(0)
      expect(await readdir(dir)).to.deep.equal(['kod-zot-v0.0.0-standin.kodbundle'])
    })

    it('refuses a binary that is missing, not a file, or not executable (exit 2), writing nothing', async function () {
      const dir = await freshRoot('refused-package')
      await writeFile(path.join(dir, 'plain'), 'not executable')
      for (const [binary, pattern] of [
        [path.join(dir, 'nope'), /--zot-binary .*nope does not exist/],
        [dir, /--zot-binary .* is not a file/],
        [path.join(dir, 'plain'), /--zot-binary .*plain is not executable/],
      ] as const) {
        const result = await kod(['package-zot', '--zot-binary', binary], {cwd: dir})
        expect(result.exitCode, result.stderr).to.equal(2)
        oneLineError(result, pattern)
      }
      expect(await readdir(dir)).to.deep.equal(['plain'])
      const onFile = await kod(['package-zot', '--zot-binary', file('zot'), '-o', path.join(dir, 'plain')], {cwd: dir})
      expect(onFile.exitCode).to.equal(2)
      oneLineError(onFile, /-o .*plain is an existing file, not a directory/)
      const noParent = await kod(['package-zot', '--zot-binary', file('zot'), '-o', path.join(dir, 'no', 'zot.kodbundle')], {cwd: dir})
      expect(noParent.exitCode).to.equal(2)
      oneLineError(noParent, /-o .*zot\.kodbundle: .*\/no is not a directory/)
      expect(await readdir(dir)).to.deep.equal(['plain'])
    })

    it('-o DIR writes the bundle into DIR, creating it', async function () {
      const dir = path.join(await freshRoot('output-dir'), 'bundles')
      const made = await kod(['package-zot', '--zot-binary', file('zot'), '-o', dir], {cwd: work})
      expect(made.exitCode, made.stderr).to.equal(0)
      expect(await readdir(dir)).to.deep.equal(['kod-zot-v0.0.0-standin.kodbundle'])
    })
  })

  describe('deploy-zot --root', function () {
    it('installs binary, config, unit, sysusers and tmpfiles entries below --root, with the real paths inside, owners and modes as documented', async function () {
      const root = await freshRoot('root-default')
      await rm(log, {force: true})
      const result = await kod(['deploy-zot', '-c', bundle, '--root', root], {cwd: work, env: {ZOT_STANDIN_LOG: log}})
      expect(result.exitCode, result.stderr).to.equal(0)
      expect(result.stdout).to.match(/zot installed below .*: http:\/\/0\.0\.0\.0:5000, storage \/var\/lib\/zot; zot\.service not started \(--root\)/)
      // --root runs neither useradd nor systemctl, and says so.
      expect(result.stderr).to.match(/^Skipped \(--root\): useradd --system .* zot: systemd-sysusers makes user zot at boot/m)
      expect(result.stderr).to.match(/^Skipped \(--root\): systemctl daemon-reload; systemctl enable --now zot\.service: to start zot when the image boots, run systemctl --root=\S+ enable zot\.service$/m)
      // The bundle's zot answered `verify --help`, so deploy-zot ran `zot verify` on the config it wrote (the stand-in logged it).
      expect((await readFile(log, 'utf8')).split('\n')).to.satisfy((lines: string[]) => lines.some((line) => /^verify \/.*\/config\.json$/.test(line)))

      const modes: Record<string, string> = {}
      for (const entry of await tree(root)) {
        const info = await stat(path.join(root, entry))
        modes[entry] = `${info.isDirectory() ? 'd' : '-'}${(info.mode & 0o7777).toString(8)} ${info.uid}:${info.gid}`
      }
      // With --root kod sets no owner (the files are whoever ran kod's: here uid ${process.getuid?.()}); systemd gives zot its own at boot.
      const me = `${process.getuid!()}:${process.getgid!()}`
      expect(modes).to.deep.include({
        'usr/local/bin/zot': `-755 ${me}`,
        'usr/local/bin/zli': `-755 ${me}`,
        'etc/zot': `d750 ${me}`,
        'etc/zot/config.json': `-640 ${me}`,
        'etc/systemd/system/zot.service': `-644 ${me}`,
        'var/lib/zot': `d750 ${me}`,
        'usr/lib/sysusers.d/kod-zot.conf': `-644 ${me}`,
        'usr/lib/tmpfiles.d/kod-zot.conf': `-644 ${me}`,
      })
      expect(await sha256(path.join(root, 'usr/local/bin/zot'))).to.equal(await sha256(file('zot')))

      // The config: JSON in zot's documented format, the real storage path, listening on every address, keeping untagged manifests.
      const config = JSON.parse(await readFile(path.join(root, 'etc/zot/config.json'), 'utf8')) as ZotConfig
      expect(configProblems(config)).to.deep.equal([])
      expect(keepsUntagged(config)).to.equal(true)
      expect(config.distSpecVersion).to.be.a('string')
      expect(config.storage.rootDirectory).to.equal('/var/lib/zot')
      expect(config.http).to.deep.equal({address: '0.0.0.0', port: '5000'})
      expect(config.storage.retention?.policies?.[0]).to.deep.include({repositories: ['**'], deleteUntagged: false})

      // The unit names the real paths, not the --root ones.
      const unit = await readFile(path.join(root, 'etc/systemd/system/zot.service'), 'utf8')
      expect(unit).to.include('ExecStart=/usr/local/bin/zot serve /etc/zot/config.json\n').and.include('ReadWritePaths=/var/lib/zot\n')
      expect(unit).to.not.include(root)
      expect(await readFile(path.join(root, 'usr/lib/tmpfiles.d/kod-zot.conf'), 'utf8')).to.include('d /var/lib/zot 0750 zot zot -\n').and.include('z /etc/zot/config.json 0640 root zot -\n')
    })

    it('the installed unit passes systemd-analyze verify and scores "OK" or better in systemd-analyze security (where systemd-analyze is installed)', async function () {
      if (!(await has('systemd-analyze'))) {
        console.log('      note: systemd-analyze is not installed here; the installed unit was not checked by systemd')
        this.skip()
      }
      const root = await freshRoot('root-unit')
      const result = await kod(['deploy-zot', '-c', bundle, '--root', root], {cwd: work})
      expect(result.exitCode, result.stderr).to.equal(0)
      // systemd-analyze verify checks that ExecStart's binary exists on this host, where /usr/local/bin/zot
      // is not: the copy it checks points ExecStart at the installed stand-in below --root. Nothing else changes.
      const unit = await readFile(path.join(root, 'etc/systemd/system/zot.service'), 'utf8')
      const checked = path.join(work, 'zot.service')
      await writeFile(checked, unit.replace('ExecStart=/usr/local/bin/zot ', `ExecStart=${root}/usr/local/bin/zot `))
      const verify = await execa('systemd-analyze', ['verify', '--man=no', checked], {reject: false})
      expect(verify.exitCode, verify.stderr).to.equal(0)
      expect(verify.stderr.trim(), 'systemd-analyze verify warnings').to.equal('')
      // The exposure score of the unit as installed (threshold 40 = "OK" or better; this unit scores about 3.4).
      const security = await execa('systemd-analyze', ['security', '--offline=yes', `--root=${root}`, '--threshold=40', 'zot.service'], {reject: false})
      if (/unrecognized option|unknown option/i.test(security.stderr)) {
        console.log('      note: this systemd-analyze has no security --offline; the exposure score was not checked')
        return
      }
      expect(security.exitCode, security.stdout.split('\n').slice(-3).join('\n') + security.stderr).to.equal(0)
      expect(security.stdout).to.match(/Overall exposure level for zot\.service: [0-3]\.\d/)
    })

    it('at boot, systemd-sysusers and systemd-tmpfiles (run here with --root) make user zot and give it the storage directory and the config', async function () {
      if (!(await has('systemd-sysusers')) || !(await has('systemd-tmpfiles'))) {
        console.log('      note: systemd-sysusers or systemd-tmpfiles is not installed here; the boot-time owners were not checked')
        this.skip()
      }
      const root = await freshRoot('root-boot')
      expect((await kod(['deploy-zot', '-c', bundle, '--root', root, '--htpasswd', file('htpasswd'), '--tls-cert', file('server.crt'), '--tls-key', file('server.key')], {cwd: work})).exitCode).to.equal(0)
      // Both change only files below --root.
      await execa('systemd-sysusers', [`--root=${root}`])
      await execa('systemd-tmpfiles', [`--root=${root}`, '--create'])
      const passwd = (await readFile(path.join(root, 'etc/passwd'), 'utf8')).split('\n').find((line) => line.startsWith('zot:'))!
      const [, , uid, gid, , home, shell] = passwd.split(':')
      expect([home, shell]).to.deep.equal(['/var/lib/zot', '/usr/sbin/nologin'])
      const owner = async (entry: string): Promise<string> => {
        const info = await stat(path.join(root, entry))
        return `${(info.mode & 0o7777).toString(8)} ${info.uid}:${info.gid}`
      }
      expect(await owner('var/lib/zot')).to.equal(`750 ${uid}:${gid}`)
      expect(await owner('etc/zot')).to.equal(`750 0:${gid}`)
      expect(await owner('etc/zot/config.json')).to.equal(`640 0:${gid}`)
      expect(await owner('etc/zot/htpasswd')).to.equal(`640 0:${gid}`)
      expect(await owner('etc/zot/tls/server.key')).to.equal(`640 0:${gid}`)
      expect(await owner('etc/zot/tls/server.crt')).to.equal(`644 0:${gid}`)
    })

    it('--port, --address, --storage, TLS and htpasswd: in the config and the unit, the files installed below /etc/zot', async function () {
      const root = await freshRoot('root-options')
      const result = await kod(
        ['deploy-zot', '-c', bundle, '--root', root, '--port', '443', '--address', '10.0.0.5', '--storage', '/srv/registry', '--tls-cert', file('server.crt'), '--tls-key', file('server.key'), '--htpasswd', file('htpasswd'), '--no-start'],
        {cwd: work},
      )
      expect(result.exitCode, result.stderr).to.equal(0)
      expect(result.stdout).to.match(/https:\/\/10\.0\.0\.5:443, storage \/srv\/registry, login required/)
      const config = JSON.parse(await readFile(path.join(root, 'etc/zot/config.json'), 'utf8')) as ZotConfig
      expect(checkConfig(config)).to.deep.equal([])
      expect(config.http).to.deep.equal({address: '10.0.0.5', port: '443', tls: {cert: '/etc/zot/tls/server.crt', key: '/etc/zot/tls/server.key'}, auth: {htpasswd: {path: '/etc/zot/htpasswd'}}})
      expect(config.storage.rootDirectory).to.equal('/srv/registry')
      expect(await readFile(path.join(root, 'etc/zot/tls/server.key'), 'utf8')).to.equal(await readFile(file('server.key'), 'utf8'))
      expect((await stat(path.join(root, 'etc/zot/tls/server.key'))).mode & 0o777).to.equal(0o640)
      expect((await stat(path.join(root, 'srv/registry'))).isDirectory()).to.equal(true)
      const unit = await readFile(path.join(root, 'etc/systemd/system/zot.service'), 'utf8')
      expect(unit).to.include('ReadWritePaths=/srv/registry\n').and.include('AmbientCapabilities=CAP_NET_BIND_SERVICE\n')
      // --no-start: no enable, no start.
      expect(result.stderr).to.match(/^Skipped \(--root\): systemctl daemon-reload$/m)
    })

    it('takes the bundle unpacked into a directory, and a signed one with --verify-key', async function () {
      const unpacked = file('unpacked')
      await mkdir(unpacked)
      await tar.extract({file: bundle, cwd: unpacked})
      const root = await freshRoot('root-dir')
      const fromDir = await kod(['deploy-zot', '-c', unpacked, '--root', root], {cwd: work})
      expect(fromDir.exitCode, fromDir.stderr).to.equal(0)
      const signedRoot = await freshRoot('root-signed')
      const good = await kod(['deploy-zot', '-c', signed, '--root', signedRoot, '--verify-key', file('key.pub')], {cwd: work})
      expect(good.exitCode, good.stderr).to.equal(0)
    })

    it('reinstalling the same is fine; a different config is replaced only with --force', async function () {
      const root = await freshRoot('root-again')
      expect((await kod(['deploy-zot', '-c', bundle, '--root', root], {cwd: work})).exitCode).to.equal(0)
      const same = await kod(['deploy-zot', '-c', bundle, '--root', root], {cwd: work})
      expect(same.exitCode, same.stderr).to.equal(0)
      const before = await readFile(path.join(root, 'etc/zot/config.json'), 'utf8')
      const refused = await kod(['deploy-zot', '-c', bundle, '--root', root, '--port', '6000'], {cwd: work})
      expect(refused.exitCode, refused.stderr).to.equal(2)
      oneLineError(refused, /root-again\/etc\/zot\/config\.json is installed already and differs from what this deploy installs: --force replaces it$/)
      expect(await readFile(path.join(root, 'etc/zot/config.json'), 'utf8')).to.equal(before)
      const forced = await kod(['deploy-zot', '-c', bundle, '--root', root, '--port', '6000', '--force'], {cwd: work})
      expect(forced.exitCode, forced.stderr).to.equal(0)
      expect(forced.stderr).to.match(/^Warning: --force: replacing .*config\.json$/m)
      // Replacing files of a running zot restarts it (said as skipped under --root).
      expect(forced.stderr).to.match(/Skipped \(--root\): systemctl daemon-reload; systemctl enable zot\.service; systemctl restart zot\.service/)
      expect(JSON.parse(await readFile(path.join(root, 'etc/zot/config.json'), 'utf8')).http.port).to.equal('6000')
      // No backup left behind.
      expect((await tree(root)).filter((entry) => entry.includes('kod-backup'))).to.deep.equal([])
    })
  })

  describe('deploy-zot --list-commands', function () {
    it('prints every step, installs nothing, and keeps what the printed commands read in ./kod-zot-<version>', async function () {
      const root = await freshRoot('root-list')
      const cwd = await freshRoot('list-cwd')
      const result = await kod(['deploy-zot', '-c', bundle, '--root', root, '--list-commands', '--htpasswd', file('htpasswd')], {cwd})
      expect(result.exitCode, result.stderr).to.equal(0)
      expect(await tree(root), 'nothing installed').to.deep.equal([])
      const kept = path.join(cwd, 'kod-zot-v0.0.0-standin')
      expect(result.stderr).to.include(`The printed commands read ${kept}/bundle (the bundle, unpacked) and ${kept}/files (the files deploy-zot generated)`)
      const lines = result.stdout.trim().split('\n')
      expect(lines).to.deep.equal([
        `${kept}/bundle/bin/zot verify ${kept}/files/config.json`,
        `install -d -m 0755 ${root}/usr/local/bin`,
        `install -d -m 0750 ${root}/etc/zot`,
        `install -d -m 0750 ${root}/var/lib/zot`,
        `install -d -m 0755 ${root}/etc/systemd/system`,
        `install -d -m 0755 ${root}/usr/lib/sysusers.d`,
        `install -d -m 0755 ${root}/usr/lib/tmpfiles.d`,
        `install -m 0755 ${kept}/bundle/bin/zot ${root}/usr/local/bin/zot`,
        `install -m 0755 ${kept}/bundle/bin/zli ${root}/usr/local/bin/zli`,
        `install -m 0640 ${kept}/files/config.json ${root}/etc/zot/config.json`,
        `install -m 0640 ${file('htpasswd')} ${root}/etc/zot/htpasswd`,
        `install -m 0644 ${kept}/files/zot.service ${root}/etc/systemd/system/zot.service`,
        `install -m 0644 ${kept}/files/kod-zot.sysusers.conf ${root}/usr/lib/sysusers.d/kod-zot.conf`,
        `install -m 0644 ${kept}/files/kod-zot.tmpfiles.conf ${root}/usr/lib/tmpfiles.d/kod-zot.conf`,
      ])
      // The printed commands run as printed, and install what deploy-zot would.
      for (const line of lines) await execa('sh', ['-c', line])
      const config = JSON.parse(await readFile(path.join(root, 'etc/zot/config.json'), 'utf8')) as ZotConfig
      expect(config.http.auth).to.deep.equal({htpasswd: {path: '/etc/zot/htpasswd'}})
      // A second run reuses the unpacked bundle.
      const again = await kod(['deploy-zot', '-c', bundle, '--root', root, '--list-commands', '--force'], {cwd})
      expect(again.exitCode, again.stderr).to.equal(0)
    })

    it('on the host (no --root): useradd, owners on every install, systemctl; nothing is run or installed', async function () {
      const cwd = await freshRoot('list-host')
      const result = await kod(['deploy-zot', '-c', bundle, '--list-commands'], {cwd})
      expect(result.exitCode, result.stderr).to.equal(0)
      const lines = result.stdout.trim().split('\n')
      const kept = path.join(cwd, 'kod-zot-v0.0.0-standin')
      // useradd appears unless this machine already has a user zot.
      const hasZot = (await execa('getent', ['passwd', 'zot'], {reject: false})).exitCode === 0
      expect(lines[0]).to.equal(`${kept}/bundle/bin/zot verify ${kept}/files/config.json`)
      if (!hasZot) expect(lines[1]).to.match(/^useradd --system (--user-group|--gid zot) --home-dir \/var\/lib\/zot --no-create-home --shell \/usr\/sbin\/nologin --comment 'zot OCI registry' zot$/)
      expect(lines).to.include('install -d -m 0750 -o zot -g zot /var/lib/zot')
      expect(lines).to.include(`install -m 0755 -o root -g root ${kept}/bundle/bin/zot /usr/local/bin/zot`)
      expect(lines).to.include(`install -m 0640 -o root -g zot ${kept}/files/config.json /etc/zot/config.json`)
      expect(lines.slice(-2)).to.deep.equal(['systemctl daemon-reload', 'systemctl enable --now zot.service'])
      expect(result.stderr).to.not.match(/Skipped/)
    })
  })

  describe('refusals: one Error line, the right exit code, nothing installed', function () {
    const refusedInto = async (name: string, args: string[], exit: number, pattern: RegExp, env: Record<string, string> = {}): Promise<{stderr: string}> => {
      const root = await freshRoot(name)
      const cwd = await freshRoot(`${name}-cwd`)
      const result = await kod(['deploy-zot', ...args.map((arg) => (arg === 'ROOT' ? root : arg))], {cwd, env})
      expect(result.exitCode, result.stderr).to.equal(exit)
      oneLineError(result, pattern)
      expect(await tree(root), 'nothing installed').to.deep.equal([])
      expect(await tree(cwd), 'nothing left in the working directory').to.deep.equal([])
      return result
    }

    it('a flipped byte in the bundle (exit 5), with and without --list-commands', async function () {
      const tampered = file('tampered.kodbundle')
      const bytes = await readFile(bundle)
      // A byte of the config template, inside the archive.
      const at = bytes.indexOf('"rootDirectory"')
      expect(at).to.be.greaterThan(0)
      bytes[at + 2] ^= 0x01
      await writeFile(tampered, bytes)
      await refusedInto('root-tampered', ['-c', tampered, '--root', 'ROOT'], 5, /tampered\.kodbundle: .*zot\/config\.json/)
      await refusedInto('root-tampered-list', ['-c', tampered, '--root', 'ROOT', '--list-commands'], 5, /tampered\.kodbundle: .*zot\/config\.json/)
    })

    it('a bundle signed with another key, or not signed, with --verify-key (exit 5)', async function () {
      await refusedInto('root-other-key', ['-c', signed, '--root', 'ROOT', '--verify-key', file('other.pub')], 5, /signature does not match --verify-key/)
      await refusedInto('root-unsigned', ['-c', bundle, '--root', 'ROOT', '--verify-key', file('key.pub')], 5, /is not signed/)
    })

    it('an htpasswd file with a plain-text password (exit 2), never printing it', async function () {
      await writeFile(file('plain-htpasswd'), `alice:${BCRYPT}\nbob:correct-horse-battery\n`)
      const result = await refusedInto('root-htpasswd', ['-c', bundle, '--root', 'ROOT', '--htpasswd', file('plain-htpasswd')], 2, /--htpasswd .*plain-htpasswd: line 2: the password of bob is plain text .*: kod accepts bcrypt hashes only$/)
      expect(result.stderr).to.not.include('correct-horse-battery')
    })

    it('--tls-cert without --tls-key, and the reverse (exit 2)', async function () {
      await refusedInto('root-tls-cert', ['-c', bundle, '--root', 'ROOT', '--tls-cert', file('server.crt')], 2, /--tls-key/)
      await refusedInto('root-tls-key', ['-c', bundle, '--root', 'ROOT', '--tls-key', file('server.key')], 2, /--tls-cert/)
    })

    it('a certificate or key that is no PEM (exit 2)', async function () {
      await refusedInto('root-tls-bad', ['-c', bundle, '--root', 'ROOT', '--tls-cert', file('htpasswd'), '--tls-key', file('server.key')], 2, /--tls-cert .* holds no PEM certificate/)
      await refusedInto('root-tls-bad-key', ['-c', bundle, '--root', 'ROOT', '--tls-cert', file('server.crt'), '--tls-key', file('server.crt')], 2, /--tls-key .* holds no PEM private key/)
    })

    it('bad --port, --address, --storage and --root (exit 2)', async function () {
      await refusedInto('root-port', ['-c', bundle, '--root', 'ROOT', '--port', '70000'], 2, /--port 70000 is out of range/)
      await refusedInto('root-port-text', ['-c', bundle, '--root', 'ROOT', '--port', 'http'], 2, /port/)
      await refusedInto('root-address', ['-c', bundle, '--root', 'ROOT', '--address', '0.0.0.0:5000'], 2, /--address "0\.0\.0\.0:5000" is no IP address/)
      await refusedInto('root-storage', ['-c', bundle, '--root', 'ROOT', '--storage', '/home/zot'], 2, /ProtectHome/)
      await refusedInto('root-storage-rel', ['-c', bundle, '--root', 'ROOT', '--storage', 'data'], 2, /not an absolute path/)
      const missing = await kod(['deploy-zot', '-c', bundle, '--root', file('no-such-root')], {cwd: work})
      expect(missing.exitCode).to.equal(2)
      oneLineError(missing, /--root .*no-such-root does not exist/)
    })

    it('a bundle that is missing, a binary, or a kod package (exit 2)', async function () {
      await refusedInto('root-missing', ['-c', file('nope.kodbundle'), '--root', 'ROOT'], 2, /not found|does not exist/)
      await refusedInto('root-binary', ['-c', file('zot'), '--root', 'ROOT'], 2, /zot is not a kod bundle: it is not a tar archive/)
      const fake = await freshRoot('fake-package')
      await writeFile(path.join(fake, 'kod-package.yaml'), 'formatVersion: 4\n')
      await tar.create({file: file('fake.kodpkg'), cwd: fake}, ['kod-package.yaml'])
      await refusedInto('root-package', ['-c', file('fake.kodpkg'), '--root', 'ROOT'], 2, /fake\.kodpkg is not a kod bundle: it is a kod package/)
    })

    it('a config the bundle\'s zot verify refuses (exit 4)', async function () {
      await refusedInto('root-verify', ['-c', bundle, '--root', 'ROOT'], 4, /zot verify refused the config kod wrote .*nothing was installed/, {ZOT_STANDIN_REFUSE: '1'})
    })

    it('a directory where the config belongs (exit 2)', async function () {
      const root = await freshRoot('root-in-the-way')
      await mkdir(path.join(root, 'etc/zot/config.json'), {recursive: true})
      const result = await kod(['deploy-zot', '-c', bundle, '--root', root], {cwd: work})
      expect(result.exitCode, result.stderr).to.equal(2)
      oneLineError(result, /etc\/zot\/config\.json is in the way: it is a directory/)
      expect(await tree(root)).to.deep.equal(['etc', 'etc/zot', 'etc/zot/config.json'])
    })

    it('a step that fails midway: the steps before it are undone, what was there is put back (exit 4)', async function () {
      // install(1) through KOD_INSTALL: a wrapper that fails when asked to install the unit, after the binaries and the config went in.
      const failing = file('failing-install')
      await writeFile(failing, '#!/bin/sh\nfor last; do :; done\ncase "$last" in *zot.service) echo "install: cannot create $last: Input/output error (test)" >&2; exit 1 ;; esac\nexec install "$@"\n')
      await chmod(failing, 0o755)
      const fresh = await freshRoot('root-rollback')
      const result = await kod(['deploy-zot', '-c', bundle, '--root', fresh], {cwd: work, env: {KOD_INSTALL: failing}})
      expect(result.exitCode, result.stderr).to.equal(4)
      oneLineError(result, /zot\.service/)
      expect(await tree(fresh), 'nothing half-installed').to.deep.equal([])

      // Over an earlier install: the config --force was replacing comes back as it was, and no backup is left.
      const earlier = await freshRoot('root-rollback-earlier')
      expect((await kod(['deploy-zot', '-c', bundle, '--root', earlier], {cwd: work})).exitCode).to.equal(0)
      const before = new Map<string, string>()
      for (const entry of await tree(earlier)) if (!(await stat(path.join(earlier, entry))).isDirectory()) before.set(entry, await sha256(path.join(earlier, entry)))
      const again = await kod(['deploy-zot', '-c', bundle, '--root', earlier, '--port', '6000', '--force'], {cwd: work, env: {KOD_INSTALL: failing}})
      expect(again.exitCode, again.stderr).to.equal(4)
      const after = new Map<string, string>()
      for (const entry of await tree(earlier)) if (!(await stat(path.join(earlier, entry))).isDirectory()) after.set(entry, await sha256(path.join(earlier, entry)))
      expect(after).to.deep.equal(before)
    })

    it('without --root or --list-commands, a user who is not root (exit 2)', async function () {
      // As root, the refusal is seen by running kod as nobody (setpriv): kod refuses before reading the bundle.
      const asRoot = process.getuid?.() === 0
      if (asRoot && !(await has('setpriv'))) this.skip()
      const run = asRoot
        ? await execa('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, path.join(ROOT, 'bin', 'run.js'), 'deploy-zot', '-c', bundle], {cwd: '/', env: {PATH: process.env.PATH ?? ''}, reject: false})
        : await execa(process.execPath, [path.join(ROOT, 'bin', 'run.js'), 'deploy-zot', '-c', bundle], {cwd: work, reject: false})
      const result = {exitCode: run.exitCode ?? 1, stderr: String(run.stderr)}
      expect(result.exitCode, result.stderr).to.equal(2)
      oneLineError(result, /run it as root \(sudo\), or give --root DIR/)
    })
  })
})
