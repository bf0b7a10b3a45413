import {expect} from 'chai'
import {mkdtemp, readFile, rm, stat} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {Readable} from 'node:stream'

import type {RunOptions, ToolName} from '../../src/api.js'
import {chartCredentialsFrom} from '../../src/lib/base-command.js'
import {ExitCode, KodError} from '../../src/lib/errors.js'
import {existsInRegistry} from '../../src/lib/images.js'
import {authFileEnvironment, hasUserinfo, loginSuggestion, readPasswordStdin, redactLine, stripUserinfo, withEnvironment, writeAuthFile} from '../../src/lib/credentials.js'

/** A stdin that holds `text` (not a terminal). */
function stdinOf(text: string): NodeJS.ReadStream {
  return Readable.from([Buffer.from(text)]) as unknown as NodeJS.ReadStream
}

describe('credentials', function () {
  it('reads the password from stdin as helm does: all of it, without the final line break', async function () {
    expect(await readPasswordStdin('--password-stdin', stdinOf('s3cret pw\n'))).to.equal('s3cret pw')
    expect(await readPasswordStdin('--password-stdin', stdinOf('s3cret\r\n'))).to.equal('s3cret')
    expect(await readPasswordStdin('--password-stdin', stdinOf('a:b@c'))).to.equal('a:b@c')
    let error: unknown
    await readPasswordStdin('--registry-password-stdin', stdinOf('')).catch((caught: unknown) => {
      error = caught
    })
    expect((error as Error).message).to.equal('--registry-password-stdin: stdin held no password')
    expect((error as {exit: number}).exit).to.equal(2)
  })

  it('writes a docker config.json auth file only its owner can read', async function () {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'kod-cred-'))
    try {
      const file = await writeAuthFile(path.join(dir, 'login'), 'registry.local:5000', {username: 'robot', password: 'pw:with@odd'})
      expect((await stat(file)).mode & 0o777).to.equal(0o600)
      expect((await stat(path.dirname(file))).mode & 0o777).to.equal(0o700)
      const config = JSON.parse(await readFile(file, 'utf8')) as {auths: Record<string, {auth: string}>}
      expect(Buffer.from(config.auths['registry.local:5000'].auth, 'base64').toString()).to.equal('robot:pw:with@odd')
      expect(authFileEnvironment(file)).to.deep.equal({REGISTRY_AUTH_FILE: file, HELM_REGISTRY_CONFIG: file})
    } finally {
      await rm(dir, {recursive: true, force: true})
    }
  })

  it('hands the auth file to every tool through the environment, never the arguments', async function () {
    const calls: Array<{tool: ToolName; args: string[]; options?: RunOptions}> = []
    const runner = withEnvironment({binary: (tool) => tool, run: async (tool, args, options) => {
      calls.push({tool, args, options})
      return {stdout: '', stderr: ''}
    }}, {REGISTRY_AUTH_FILE: '/tmp/kod-x/auth.json'})
    await runner.run('skopeo', ['copy', 'a', 'b'], {env: {OTHER: '1'}})
    expect(calls[0]).to.deep.equal({tool: 'skopeo', args: ['copy', 'a', 'b'], options: {env: {REGISTRY_AUTH_FILE: '/tmp/kod-x/auth.json', OTHER: '1'}}})
  })

  it('says how to log in when the target answers 401, and only then', function () {
    expect(loginSuggestion('skopeo copy failed: unauthorized: authentication required', 'registry.local:5000/airgap')[0]).to.match(
      /^log in to registry\.local:5000: add --registry-username USER --registry-password-stdin .*skopeo login registry\.local:5000 and helm registry login registry\.local:5000$/,
    )
    expect(loginSuggestion('helm push failed: basic credential not found', 'r:5000')).to.have.length(1)
    // as kod's error redaction leaves it
    expect(loginSuggestion('helm push failed: GET "http://r:5000/v2/x": basic *** not found', 'r:5000')).to.have.length(1)
    expect(loginSuggestion('skopeo copy failed: manifest unknown', 'r:5000')).to.deep.equal([])
  })

  it('says how to log in when the registry check is refused for want of a login', async function () {
    const refusing = {binary: (tool: ToolName) => tool, run: async (): Promise<never> => {
      throw new KodError('skopeo inspect failed: reading manifest 1.0 in r:5000/kod/x: unauthorized: authentication required', {exit: ExitCode.toolFailed})
    }}
    const target = {registry: 'r:5000', prefix: 'kod', plainHttp: true, insecureSkipTlsVerify: false}
    const error = await existsInRegistry(refusing, 'r:5000/kod/x:1.0', target).then(() => undefined, (caught: unknown) => caught as KodError)
    expect(error?.exit).to.equal(ExitCode.toolFailed)
    expect(error?.suggestions[0]).to.match(/^log in to r:5000: add --registry-username USER --registry-password-stdin/)
  })

  it('hides user:password@ in what kod prints, with or without a scheme, and keeps image digests', function () {
    expect(hasUserinfo('https://u:p@charts.example.com')).to.equal(true)
    expect(hasUserinfo('u:p@registry:5000')).to.equal(true)
    expect(hasUserinfo('https://charts.example.com/a@b')).to.equal(false)
    expect(stripUserinfo('https://u:p@charts.example.com/x')).to.equal('https://***@charts.example.com/x')
    expect(redactLine("argv: [ '-r', 'u:pw@127.0.0.1:5000', '-c', 'oci://a:b@h/c' ]")).to.equal("argv: [ '-r', '***@127.0.0.1:5000', '-c', 'oci://***@h/c' ]")
    expect(redactLine('skopeo copy docker://registry:5000/nginx@sha256:abc oci:/x:nginx')).to.equal('skopeo copy docker://registry:5000/nginx@sha256:abc oci:/x:nginx')
    expect(redactLine('copy nginx:1.25@sha256:abc')).to.equal('copy nginx:1.25@sha256:abc')
  })

  it('takes a chart login for the host of -r or of an oci:// chart only, and refuses credentials in URLs', async function () {
    const refused = async (flags: Parameters<typeof chartCredentialsFrom>[0]): Promise<string> =>
      chartCredentialsFrom(flags).then(
        () => 'accepted',
        (error: Error) => error.message,
      )
    expect(await refused({chart: 'hello', repo: 'https://u:secret@charts.example.com'})).to.equal(
      '-r https://***@charts.example.com: credentials do not belong in the URL (it is recorded in the package and visible to every process): give them with --username USER --password-stdin',
    )
    expect(await refused({chart: 'oci://u:secret@ghcr.io/org/c'})).to.match(/^-c oci:\/\/\*\*\*@ghcr\.io\/org\/c: credentials/)
    expect(await refused({chart: 'hello', repo: 'https://charts.example.com', username: 'u'})).to.match(/--username needs --password-stdin/)
    expect(await refused({chart: 'hello', repo: 'https://charts.example.com', 'password-stdin': true})).to.match(/--password-stdin needs --username USER/)
    expect(await chartCredentialsFrom({chart: 'hello', repo: 'https://charts.example.com'})).to.equal(undefined)
  })
})
