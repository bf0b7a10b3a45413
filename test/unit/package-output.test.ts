import {expect} from 'chai'
import {mkdtemp, readFile, rm} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'

import {outputTarget} from '../../src/lib/actions/package.js'
import {describeImage} from '../../src/lib/images.js'
import {layoutIndex} from '../../src/lib/oci.js'
import {progressMode} from '../../src/lib/progress.js'
import {buildLayout} from '../support/oci-build.js'

describe('kod package -o', function () {
  it('a value ending in .kodpkg, .tgz or .tar names the file, in its directory', function () {
    expect(outputTarget('out/my.kodpkg', false)).to.deep.equal({outDir: path.resolve('out'), outFile: path.resolve('out/my.kodpkg')})
    expect(outputTarget('/media/usb/x.kodpkg', false)).to.deep.equal({outDir: '/media/usb', outFile: '/media/usb/x.kodpkg'})
    // The names the architecture note uses for packages.
    expect(outputTarget('kod-mychart-1.2.3.tgz', false)).to.deep.equal({outDir: path.resolve('.'), outFile: path.resolve('kod-mychart-1.2.3.tgz')})
    expect(outputTarget('out/x.tar', false)).to.deep.equal({outDir: path.resolve('out'), outFile: path.resolve('out/x.tar')})
  })

  it('anything else, or an existing directory named *.kodpkg, is a directory as before', function () {
    expect(outputTarget('out', false)).to.deep.equal({outDir: path.resolve('out')})
    expect(outputTarget('.', true)).to.deep.equal({outDir: path.resolve('.')})
    expect(outputTarget('packages.kodpkg', true)).to.deep.equal({outDir: path.resolve('packages.kodpkg')})
  })
})

describe('progress mode', function () {
  it('is quiet when asked (--json), live on a terminal stderr, plain lines otherwise', function () {
    expect(progressMode(true, {isTTY: true})).to.equal('quiet')
    expect(progressMode(false, {isTTY: true})).to.equal('live')
    expect(progressMode(false, {isTTY: false})).to.equal('plain')
    expect(progressMode(false, {})).to.equal('plain')
    // A terminal that says it is 0 columns wide gets plain lines, not the live display a character a line.
    expect(progressMode(false, {isTTY: true, columns: 0})).to.equal('plain')
    expect(progressMode(false, {isTTY: true, columns: 80})).to.equal('live')
  })
})

describe('image sizes in the layout', function () {
  let dir: string

  before(async function () {
    dir = await mkdtemp(path.join(os.tmpdir(), 'kod-size-'))
  })

  after(async function () {
    await rm(dir, {recursive: true, force: true})
  })

  it('count the manifest or index and every blob it reaches, each distinct blob once', async function () {
    const shared = {files: {'etc/shared': 'the same layer in every platform\n'}}
    await buildLayout(dir, [
      {name: 'single', layers: [shared, {files: {'app/one': 'one\n'}}]},
      {name: 'multi', layers: [shared], architectures: ['amd64', 'arm64']},
    ])
    const entries = await layoutIndex(dir)
    const named = (name: string) => entries.find((entry) => entry.annotations?.['org.opencontainers.image.ref.name'] === name)!
    type Blob = {digest: string; size: number}
    const json = async (digest: string): Promise<{manifests?: Blob[]; config?: Blob; layers?: Blob[]}> =>
      JSON.parse(await readFile(path.join(dir, 'blobs', 'sha256', digest.slice(7)), 'utf8'))

    const single = named('single')
    const manifest = await json(single.digest)
    const described = await describeImage(dir, 'single')
    expect(described.bytes).to.equal(single.size + manifest.config!.size + manifest.layers!.reduce((sum, layer) => sum + layer.size, 0))
    expect([...described.blobs.keys()].sort()).to.deep.equal([single.digest, manifest.config!.digest, ...manifest.layers!.map((layer) => layer.digest)].sort())

    // The index, two manifests, two configs, and the one layer both platforms share, counted once.
    const multi = named('multi')
    const index = await json(multi.digest)
    let expected = multi.size
    const layers = new Map<string, number>()
    for (const child of index.manifests!) {
      const platform = await json(child.digest)
      expected += child.size + platform.config!.size
      for (const layer of platform.layers!) layers.set(layer.digest, layer.size)
    }
    expect(layers.size).to.equal(1)
    expected += [...layers.values()].reduce((sum, value) => sum + value, 0)
    const both = await describeImage(dir, 'multi')
    expect(both.bytes).to.equal(expected)
    expect(both.blobs.size).to.equal(1 + 2 + 2 + 1)
  })
})
