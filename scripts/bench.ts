// npm run bench [-- DIR…]: how long image analysis (`kod images`) takes per chart, and kod's peak memory,
// for the test fixtures and, when present, the shared corpus. Prints figures; asserts nothing.
import {execa} from 'execa'
import {existsSync, readdirSync, readFileSync} from 'node:fs'
import path from 'node:path'

import {ROOT, toolPath} from '../test/support/kod.js'

const dirs = process.argv.slice(2).length > 0 ? process.argv.slice(2) : [path.join(ROOT, 'test', 'fixtures', 'charts'), path.join(ROOT, '..', 'shared', 'charts')]
console.log(['CHART', 'IMAGES', 'SECONDS', 'MAX RSS MiB'].join('\t'))
for (const dir of dirs.filter((candidate) => existsSync(candidate))) {
  for (const chart of readdirSync(dir, {withFileTypes: true}).filter((entry) => entry.isDirectory()).map((entry) => entry.name).sort()) {
    const chartDir = path.join(dir, chart)
    const expected = path.join(chartDir, 'expected-images.json')
    const args = existsSync(expected) ? (JSON.parse(readFileSync(expected, 'utf8')).helmTemplateArgs as string[]) : []
    const extra = args.flatMap((arg, index) => (args[index - 1] === '-f' ? ['-f', path.join(dir, arg)] : args[index - 1] === '--kube-version' ? ['--kube-version', arg] : []))
    const started = process.hrtime.bigint()
    const result = await execa('/usr/bin/time', ['-f', '%M', process.execPath, path.join(ROOT, 'bin', 'run.js'), 'images', '-c', chartDir, ...extra, '--json'], {
      env: {PATH: toolPath()},
      reject: false,
    })
    const seconds = Number(process.hrtime.bigint() - started) / 1e9
    const rssKiB = Number(String(result.stderr).trim().split('\n').at(-1))
    const images = result.exitCode === 0 ? JSON.parse(String(result.stdout)).images.length : 'error'
    console.log([chart, images, seconds.toFixed(2), (rssKiB / 1024).toFixed(0)].join('\t'))
  }
}
