// kod's main job end to end on the bundled example (examples/webshop), with throwaway parts only:
// an "internet" registry and an "air-gapped" registry on 127.0.0.1, tiny images built on the spot,
// and helm's client-side dry run in place of a cluster. Run it with `bash scripts/demo.sh`.
import {execa} from 'execa'
import {mkdtemp, rm, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import YAML from 'yaml'

import {ROOT, toolPath} from '../test/support/kod.js'
import {buildLayout} from '../test/support/oci-build.js'
import {startRegistry} from '../test/support/registry.js'

const work = await mkdtemp(path.join(os.tmpdir(), 'kod-demo-'))
const memory = path.join(work, 'helm-releases.yaml')
await writeFile(memory, '[]\n')
const env = {...process.env, PATH: toolPath(), HELM_DRIVER: 'memory', HELM_MEMORY_DRIVER_DATA: memory}

async function step(title: string, args: string[], cwd = work): Promise<void> {
  console.log(`\n\u001B[1m== ${title}\u001B[0m\n$ kod ${args.join(' ')}`)
  await execa(process.execPath, [path.join(ROOT, 'bin', 'run.js'), ...args], {cwd, env, stdio: 'inherit'})
}

const internet = await startRegistry()
const airgap = await startRegistry()
try {
  console.log(`"internet" registry: ${internet.host}   air-gapped registry: ${airgap.host}   work dir: ${work}`)
  const base = {files: {'etc/os-release': 'NAME=kod-demo\n'}}
  const layout = path.join(work, 'build')
  await buildLayout(layout, [
    {name: 'web', layers: [base, {files: {'app/web': 'web 2.4.0\n'}}]},
    {name: 'cache', layers: [base, {files: {'app/cache': 'cache 7.2\n'}}]},
    {name: 'migrate', layers: [base, {files: {'app/migrate': 'migrate 2.4.0\n'}}]},
  ])
  for (const [name, tag] of [['web', '2.4.0'], ['cache', '7.2'], ['migrate', '2.4.0']]) {
    await execa('skopeo', ['copy', '--quiet', '--dest-tls-verify=false', `oci:${layout}:${name}`, `docker://${internet.host}/webshop/${name}:${tag}`])
  }
  const values = path.join(work, 'demo-values.yaml')
  await writeFile(
    values,
    YAML.stringify({
      web: {image: {registry: internet.host}},
      cache: {image: `${internet.host}/webshop/cache:7.2`},
      migrations: {image: {repository: `${internet.host}/webshop/migrate`}},
    }),
  )

  await step('Connected side: package the chart and its images', [
    'package', '-c', path.join(ROOT, 'examples', 'webshop'), '-f', values, '--insecure-registry', internet.host,
  ])
  await step('Look inside', ['inspect', '-c', 'kod-webshop-1.2.3.kodpkg'])

  await internet.stop()
  console.log('\n(the "internet" registry is now stopped: from here on, only the air-gapped registry exists)')

  await step('Air-gapped side: the commands deploy would run', [
    'deploy', '-c', 'kod-webshop-1.2.3.kodpkg', '-r', airgap.host, '--plain-http', '-n', 'shop', '-d', 'webshop', '--list-commands',
  ])
  await step('Air-gapped side: populate the registry and install (helm --dry-run=client, no cluster here)', [
    'deploy', '-c', 'kod-webshop-1.2.3.kodpkg', '-r', airgap.host, '--plain-http', '-n', 'shop', '-d', 'webshop', '--dry-run',
  ])
  console.log('\n\u001B[1mDone.\u001B[0m Every image above comes from the air-gapped registry.')
} finally {
  await internet.stop()
  await airgap.stop()
  await rm(work, {recursive: true, force: true})
}
