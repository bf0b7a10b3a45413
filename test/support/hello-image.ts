import {execa} from 'execa'
import {writeFile} from 'node:fs/promises'
import path from 'node:path'
import YAML from 'yaml'

import {buildLayout} from './oci-build.js'
import type {TestRegistry} from './registry.js'

/**
 * The tiny image most e2e suites package with the hello fixture chart: one layer holding hello.txt, built as
 * an OCI layout under `work` and copied with its digest to `registry` as kodtest/hello:1.0. `values` is a file
 * under `work` (upstream.yaml) that points the chart at it, with the tag when `tag` is set (else the chart's
 * appVersion, 1.0, names it).
 */
export async function seedHello(work: string, registry: TestRegistry, options: {tag?: boolean} = {}): Promise<{digest: string; values: string}> {
  const layout = path.join(work, 'build')
  const {hello: digest} = await buildLayout(layout, [{name: 'hello', layers: [{files: {'hello.txt': 'hello\n'}}]}])
  await execa('skopeo', ['copy', '--preserve-digests', '--dest-tls-verify=false', `oci:${layout}:hello`, `docker://${registry.host}/kodtest/hello:1.0`], {stdin: 'ignore'})
  const values = path.join(work, 'upstream.yaml')
  await writeFile(values, YAML.stringify({image: {repository: `${registry.host}/kodtest/hello`, ...(options.tag ? {tag: '1.0'} : {})}}))
  return {digest, values}
}
