import type {KodSource} from 'kod'

import {createHelmfileSource} from '../helmfile-source.js'

/** oclif hook `kod:sources`: the source kinds this plugin provides. */
export default async function sources(): Promise<KodSource[]> {
  return [createHelmfileSource()]
}
