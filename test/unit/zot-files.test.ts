import {Ajv} from 'ajv'
import {expect} from 'chai'
import {execa} from 'execa'
import {chmod, mkdtemp, rm, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'

import {answersVerify, parseVersion} from '../../plugins/plugin-zot/src/binary.js'
import {configTemplate} from '../../plugins/plugin-zot/src/config.js'
import {checkHtpasswd} from '../../plugins/plugin-zot/src/htpasswd.js'
import {PATHS} from '../../plugins/plugin-zot/src/layout.js'
import {type ZotBundleFields, zotBundleFiles, zotBundleProblem, zotBundleSchema} from '../../plugins/plugin-zot/src/manifest.js'
import {planInstall, useraddArgs} from '../../plugins/plugin-zot/src/plan.js'
import {DEFAULT_UNIT, renderUnit} from '../../plugins/plugin-zot/src/unit.js'

// A bcrypt hash as `htpasswd -nbB` writes it (of "secret"); the test never needs the password.
const BCRYPT = '$2y$05$BhDMSUUsySJ6F6YmNXHUK.ZlMkBYPA4Yw1a4GAG8yTKxMMyd9/0oK'

async function hasSystemdAnalyze(): Promise<boolean> {
  return (await execa('sh', ['-c', 'command -v systemd-analyze'], {reject: false})).exitCode === 0
}

describe('zot systemd unit', () => {
  it('is hardened: own user, no new privileges, read-only system but the storage, own /tmp, no home, LimitNOFILE, restart on failure', () => {
    const unit = renderUnit(DEFAULT_UNIT)
    const lines = unit.split('\n')
    for (const line of [
      'User=zot',
      'Group=zot',
      'ExecStart=/usr/local/bin/zot serve /etc/zot/config.json',
      'NoNewPrivileges=yes',
      'ProtectSystem=strict',
      'ReadWritePaths=/var/lib/zot',
      'ProtectHome=yes',
      'PrivateTmp=yes',
      'LimitNOFILE=500000',
      'Restart=on-failure',
      'CapabilityBoundingSet=',
      'WantedBy=multi-user.target',
    ]) {
      expect(lines, line).to.include(line)
    }
    expect(lines.filter((line) => line.startsWith('ReadWritePaths='))).to.have.length(1)
    expect(unit).to.not.match(/AmbientCapabilities/)
  })

  it('grants CAP_NET_BIND_SERVICE, and only it, for a port below 1024', () => {
    const lines = renderUnit({...DEFAULT_UNIT, port: 443}).split('\n')
    expect(lines).to.include('CapabilityBoundingSet=CAP_NET_BIND_SERVICE')
    expect(lines).to.include('AmbientCapabilities=CAP_NET_BIND_SERVICE')
  })

  it('refuses a path that would need quoting in a unit', () => {
    expect(() => renderUnit({...DEFAULT_UNIT, storage: '/srv/my zot'})).to.throw(/quoting/)
  })

  it('passes systemd-analyze verify, with no warning (when systemd-analyze is installed)', async function () {
    if (!(await hasSystemdAnalyze())) {
      // Said, not silently passed: this machine cannot check the unit.
      console.log('      note: systemd-analyze is not installed here; the unit was not verified by systemd')
      this.skip()
    }
    const dir = await mkdtemp(path.join(os.tmpdir(), 'kod-zot-unit-'))
    try {
      // systemd-analyze checks that ExecStart's binary exists: a stand-in script (not zot) is put there.
      const standIn = path.join(dir, 'zot')
      await writeFile(standIn, '#!/bin/sh\n# stand-in for zot: not zot\nexit 0\n')
      await chmod(standIn, 0o755)
      const unit = path.join(dir, 'zot.service')
      await writeFile(unit, renderUnit({...DEFAULT_UNIT, binary: standIn}))
      const result = await execa('systemd-analyze', ['verify', '--man=no', unit], {reject: false})
      expect(result.exitCode, result.stderr).to.equal(0)
      expect(result.stderr.trim(), 'systemd-analyze warnings').to.equal('')
    } finally {
      await rm(dir, {recursive: true, force: true})
    }
  })
})

describe('zot htpasswd check', () => {
  it('accepts bcrypt lines ($2y$, $2a$, $2b$) and blank lines', () => {
    const text = `alice:${BCRYPT}\n\nbob:${BCRYPT.replace('$2y$', '$2a$')}\r\ncarol:${BCRYPT.replace('$2y$', '$2b$')}\n`
    expect(checkHtpasswd(text)).to.deep.equal({users: ['alice', 'bob', 'carol'], problems: []})
  })

  it('refuses plain-text passwords and other hashes, naming the line and never the password', () => {
    const {problems} = checkHtpasswd(`alice:${BCRYPT}\nbob:hunter2\ncarol:$apr1$abc$def\ndave:{SHA}qUqP5cyxm6YcTAhz05Hph5gvu9M=\nnocolon\nalice:${BCRYPT}\neve:$2y$05$short\n`)
    expect(problems).to.deep.equal([
      'line 2: the password of bob is plain text (or a hash kod does not know), not a bcrypt hash',
      'line 3: the password of carol is an MD5 hash ($apr1$), not a bcrypt hash',
      'line 4: the password of dave is a SHA-1 hash ({SHA}), not a bcrypt hash',
      'line 5 is not user:hash',
      'line 6: user alice is listed twice',
      'line 7: the password of eve is a malformed bcrypt hash, not a bcrypt hash',
    ])
    expect(problems.join('\n')).to.not.include('hunter2')
  })

  it('refuses an empty file', () => {
    expect(checkHtpasswd('\n\n').problems).to.deep.equal(['it lists no user'])
  })
})

describe('zot binaries', () => {
  it("reads the version from zot -v's JSON log line, or a plain line, and nothing else", () => {
    expect(parseVersion('{"level":"info","distribution-spec":"1.1.1","commit":"v2.1.2-0-g1234abc","binary-type":"-imagetrust","go version":"go1.23.4","time":"2025-01-01T00:00:00Z","message":"version"}\n')).to.equal('v2.1.2')
    expect(parseVersion('{"level":"info","distribution-spec":"1.1.1","commit":"v2.1.9-3-gdeadbee","message":"version"}')).to.equal('v2.1.9-3-gdeadbee')
    expect(parseVersion('zot version v2.0.4\n')).to.equal('v2.0.4')
    expect(parseVersion('{"level":"info","distribution-spec":"1.1.1","commit":"","message":"version"}')).to.equal(undefined)
    expect(parseVersion('usage: zot [command]')).to.equal(undefined)
    // Another program's version is not zot's (a distribution registry given as --zot-binary).
    expect(parseVersion('docker-registry github.com/docker/distribution 2.8.2+ds1\n')).to.equal(undefined)
    expect(parseVersion('zot github.com/docker/distribution 2.8.2+ds1\n'), 'the same, run as zot').to.equal(undefined)
  })

  it("tells zot's verify help from another program's complaint about it", function () {
    expect(answersVerify('`verify` validates a zot config file\n\nUsage:\n  zot verify <config> [flags]\n\nFlags:\n  -h, --help   help for verify\n')).to.equal(true)
    expect(answersVerify('Error: unknown command "verify" for "registry"\nRun \'registry --help\' for usage.\n')).to.equal(false)
    expect(answersVerify('usage: zot [command]\n')).to.equal(false)
    expect(answersVerify('')).to.equal(false)
  })
})

describe('zot bundle manifest', () => {
  const sha = 'a'.repeat(64)
  const fields: ZotBundleFields = {
    binaries: [
      {name: 'zot', file: 'bin/zot', sha256: sha, size: 10, platform: 'linux/amd64', version: 'v2.1.2', verify: true},
      {name: 'zli', file: 'bin/zli', sha256: sha, size: 10, note: 'a script (#!), not a zot release binary'},
    ],
    config: {file: 'zot/config.json', sha256: sha},
    unit: {file: 'zot/zot.service', sha256: sha},
  }
  const validate = new Ajv({allErrors: true}).compile({type: 'object', ...zotBundleSchema})

  it('has a schema that accepts what package-zot writes, and names every file', () => {
    expect(validate(fields), JSON.stringify(validate.errors)).to.equal(true)
    expect(zotBundleProblem(fields)).to.equal(undefined)
    expect(zotBundleFiles(fields)).to.deep.equal(['bin/zot', 'bin/zli', 'zot/config.json', 'zot/zot.service'])
  })

  it('refuses a file outside its place, and a bundle without zot', () => {
    expect(validate({...fields, config: {file: '../etc/passwd', sha256: sha}})).to.equal(false)
    expect(validate({...fields, binaries: [{...fields.binaries[0], extra: 1}]})).to.equal(false)
    expect(zotBundleProblem({...fields, binaries: [fields.binaries[1]]})).to.equal('binaries holds no zot')
    expect(zotBundleProblem({...fields, binaries: [fields.binaries[0], fields.binaries[0]]})).to.equal('a binary is listed twice')
    expect(zotBundleProblem({...fields, binaries: [{...fields.binaries[0], file: 'bin/zli'}]})).to.equal('binary zot is at bin/zli, not bin/zot')
  })
})

describe('zot install plan', () => {
  const settings = {address: '0.0.0.0', port: 5000, storage: '/var/lib/zot'}

  it('installs binary, config, unit, storage and the systemd entries with their owners and modes; zot writes only its storage', () => {
    const plan = planInstall(configTemplate(), {settings, zli: true, start: true}, {})
    const modes = Object.fromEntries([...plan.directories, ...plan.files].map((entry) => [entry.path, `${entry.user}:${entry.group} ${entry.mode.toString(8)}`]))
    expect(modes).to.deep.include({
      [PATHS.zot]: 'root:root 755',
      [PATHS.zli]: 'root:root 755',
      [PATHS.configDir]: 'root:zot 750',
      [PATHS.config]: 'root:zot 640',
      [PATHS.unit]: 'root:root 644',
      '/var/lib/zot': 'zot:zot 750',
    })
    const zotOwned = [...plan.directories, ...plan.files].filter((entry) => entry.user === 'zot').map((entry) => entry.path)
    expect(zotOwned).to.deep.equal(['/var/lib/zot'])
    expect(plan.after).to.deep.equal([
      {kind: 'systemctl', args: ['daemon-reload']},
      {kind: 'systemctl', args: ['enable', '--now', 'zot.service']},
    ])
    const tmpfiles = plan.files.find((file) => file.path === PATHS.tmpfiles)!
    expect(tmpfiles.source.kind === 'generated' && tmpfiles.source.content).to.include('d /var/lib/zot 0750 zot zot -').and.include('z /etc/zot/config.json 0640 root zot -')
  })

  it('with TLS and htpasswd: installed below /etc/zot, readable by zot only, and named in the config', () => {
    const plan = planInstall(configTemplate(), {settings, zli: false, start: false}, {htpasswd: '/tmp/h', tlsCert: '/tmp/c', tlsKey: '/tmp/k'})
    expect(plan.config.http.tls).to.deep.equal({cert: PATHS.tlsCert, key: PATHS.tlsKey})
    expect(plan.config.http.auth).to.deep.equal({htpasswd: {path: PATHS.htpasswd}})
    const key = plan.files.find((file) => file.path === PATHS.tlsKey)!
    expect([key.user, key.group, key.mode]).to.deep.equal(['root', 'zot', 0o640])
    expect(key.source).to.deep.equal({kind: 'given', flag: '--tls-key', file: '/tmp/k'})
    expect(plan.files.map((file) => file.path)).to.not.include(PATHS.zli)
    expect(plan.after).to.deep.equal([{kind: 'systemctl', args: ['daemon-reload']}])
    expect(JSON.parse(plan.configText)).to.deep.equal(plan.config)
  })

  it('makes a system user with no login and no home directory created', () => {
    expect(useraddArgs({user: 'zot', home: '/var/lib/zot'})).to.deep.equal(['useradd', '--system', '--user-group', '--home-dir', '/var/lib/zot', '--no-create-home', '--shell', '/usr/sbin/nologin', '--comment', 'zot OCI registry', 'zot'])
  })
})
