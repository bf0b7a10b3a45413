#!/usr/bin/env -S node --import tsx
import './register-sdk.js'

import {execute} from '@oclif/core'

import {localPluginArgs} from './local-plugins.js'

const {args, missing} = localPluginArgs(process.argv.slice(2))
if (missing === undefined) {
  await execute({args, development: true, dir: import.meta.url})
} else {
  process.stderr.write(`Error: plugin not found: ${missing}\n`)
  process.exitCode = 2
}
