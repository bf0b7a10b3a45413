import type {KodSource} from 'kod'

import {createHelmSource} from '../helm-source.js'

/** oclif hook `kod:sources`: the source kinds this plugin provides. */
export default async function sources(): Promise<KodSource[]> {
  return [createHelmSource()]
}
