#!/usr/bin/env node
// Writes oclif.manifest.json from the built commands (what `oclif manifest` does), so the manifest is
// always generated, never hand-edited: kod's own, and one for each of kod's workspace plugins that adds
// commands (plugins/*/oclif.manifest.json, so oclif need not load their commands at every run).
import '../bin/register-sdk.js'

import {Plugin} from '@oclif/core'
import {existsSync, readFileSync, writeFileSync} from 'node:fs'
import path from 'node:path'

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..')
const plugin = new Plugin({root, type: 'core', ignoreManifest: true, errorOnManifestCreate: true, isRoot: true})
await plugin.load()
writeFileSync(path.join(root, 'oclif.manifest.json'), JSON.stringify(plugin.manifest, null, 2) + '\n')
console.log(`oclif.manifest.json: ${Object.keys(plugin.manifest.commands).length} commands`)

const kod = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8'))
for (const name of kod.oclif.plugins) {
  const dir = path.join(root, 'node_modules', name)
  if (!existsSync(path.join(dir, 'package.json'))) continue
  const own = JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8'))
  // Workspace plugins only (their package.json is in plugins/), and only those that add commands.
  if (!own.oclif?.commands || !existsSync(path.join(root, 'plugins', path.basename(name), 'package.json'))) continue
  const workspace = path.join(root, 'plugins', path.basename(name))
  const loaded = new Plugin({root: workspace, type: 'core', ignoreManifest: true, errorOnManifestCreate: true})
  await loaded.load()
  writeFileSync(path.join(workspace, 'oclif.manifest.json'), JSON.stringify(loaded.manifest, null, 2) + '\n')
  console.log(`${path.relative(root, workspace)}/oclif.manifest.json: ${Object.keys(loaded.manifest.commands).length} commands`)
}
