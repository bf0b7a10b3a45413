import {expect} from 'chai'

import {deployFailure} from '../../src/lib/actions/deploy.js'
import {asKodError} from '../../src/lib/actions/package.js'
import {insecureRegistryHost, renderKnobsFrom, setParts} from '../../src/lib/base-command.js'
import {ExitCode, fileSystemError, KodError, yamlProblem} from '../../src/lib/errors.js'

describe('errors: file-system errors, YAML problems, --insecure-registry', function () {
  describe('fileSystemError', function () {
    const nodeError = (code: string, syscall: string, file: string, dest?: string): NodeJS.ErrnoException =>
      Object.assign(new Error(`${code}: something, ${syscall} '${file}'${dest ? ` -> '${dest}'` : ''}`), {code, syscall, path: file, ...(dest ? {dest} : {})})

    it('names the path and what to do, with exit 2, for each raw code', function () {
      for (const [code, words] of [
        ['EISDIR', /\/tmp\/x is a directory where kod needs a file: give the path of a file/],
        ['EEXIST', /\/tmp\/x is in the way \(it already exists\): remove it or choose another path/],
        ['ENOENT', /\/tmp\/x does not exist: check the path/],
        ['ENOTDIR', /\/tmp\/x: part of this path is a file, not a directory/],
      ] as const) {
        const error = fileSystemError(nodeError(code, 'open', '/tmp/x'))
        expect(error).to.be.instanceOf(KodError)
        expect(error!.message).to.match(words)
        expect(error!.message).to.not.include(code)
        expect(error!.exit).to.equal(ExitCode.usage)
      }
    })

    it('names the destination of a copy that is in the way', function () {
      expect(fileSystemError(nodeError('EEXIST', 'copyfile', '/a', '/b'))!.message).to.match(/^\/b is in the way/)
      expect(fileSystemError(nodeError('EISDIR', 'copyfile', '/a', '/b'))!.message).to.match(/^\/a is a directory/)
    })

    it('still names the path of a code it does not know', function () {
      const error = fileSystemError(nodeError('EIO', 'read', '/dev/sdz'))
      expect(error!.message).to.match(/^\/dev\/sdz: EIO/)
    })

    it("a plugin's file-system error is one line naming the path; deploy's values files that cannot be written say where to go", function () {
      const plugin = asKodError(nodeError('EACCES', 'open', '/media/pkg/notes.txt'))
      expect(plugin.message).to.equal('/media/pkg/notes.txt: permission denied: choose a path you may read and write')
      expect(plugin.exit).to.equal(ExitCode.usage)
      for (const code of ['EACCES', 'EROFS', 'EPERM']) {
        const failure = deployFailure(nodeError(code, 'open', '/media/pkg/kod-values-hello.yaml'), '/media/pkg')
        expect(failure.message).to.match(/^cannot write kod's values files into \/media\/pkg: it is not writable; .*unpack the \.kodpkg there with kod unpack -c FILE -o DIR\) and deploy with -c DIR$/)
        expect(failure.exit).to.equal(ExitCode.usage)
      }
      // Elsewhere, the path is named as it is.
      expect(deployFailure(nodeError('EACCES', 'open', '/etc/x.yaml'), '/media/pkg').message).to.match(/^\/etc\/x\.yaml: permission denied/)
      expect(deployFailure(new Error('helm says no'), '/media/pkg').message).to.equal('helm says no')
    })

    it('leaves alone anything that is not a file-system error', function () {
      expect(fileSystemError(new Error('boom'))).to.equal(undefined)
      expect(fileSystemError(Object.assign(new Error('x'), {code: 'ERR_X'}))).to.equal(undefined)
      expect(fileSystemError(undefined)).to.equal(undefined)
    })
  })

  describe('yamlProblem', function () {
    it('gives the problem on one line with its line and column', function () {
      const problem = yamlProblem('a: [1\nb: 2\n')
      expect(problem).to.match(/at line 2, column 1$/)
      expect(problem).to.not.include('\n')
    })

    it('accepts valid YAML, several documents, and duplicate keys as helm does', function () {
      expect(yamlProblem('a: 1\n---\nb: 2\n')).to.equal(undefined)
      expect(yamlProblem('a: 1\na: 2\n')).to.equal(undefined)
      expect(yamlProblem('a: 1\na: 2\n', {uniqueKeys: true})).to.match(/unique/i)
    })
  })

  describe('--set', function () {
    it('splits as helm does: at commas, not escaped ones nor those inside a list', function () {
      expect(setParts('a=1,b=2')).to.deep.equal(['a=1', 'b=2'])
      expect(setParts('list={a,=b},c=3')).to.deep.equal(['list={a,=b}', 'c=3'])
      expect(setParts(String.raw`k=a\,=c`)).to.deep.equal([String.raw`k=a\,=c`])
      expect(setParts(String.raw`k=a\\,=c`)).to.deep.equal([String.raw`k=a\\`, '=c'])
    })

    it('refuses a part with nothing before its "=", and nothing else', function () {
      for (const bad of ['=x', 'a=1,=x', String.raw`k=a\\,=c`, ' ']) {
        expect(() => renderKnobsFrom({set: [bad]}), bad).to.throw(/no key before "="/)
      }
      for (const good of ['a=1', 'list={a,=b}', String.raw`k=a\,=c`, 'a=1,b=2']) expect(renderKnobsFrom({set: [good]}).set).to.deep.equal([good])
    })
  })

  describe('insecureRegistryHost', function () {
    it('takes host[:port] from a URL, with or without a trailing slash', function () {
      expect(insecureRegistryHost('http://registry.lab:5000')).to.equal('registry.lab:5000')
      expect(insecureRegistryHost('https://registry.lab:5000/')).to.equal('registry.lab:5000')
      expect(insecureRegistryHost('oci://Registry.Lab')).to.equal('registry.lab')
      expect(insecureRegistryHost('localhost:5000')).to.equal('localhost:5000')
      expect(insecureRegistryHost('10.0.0.1:5000/')).to.equal('10.0.0.1:5000')
      expect(insecureRegistryHost('[::1]:5000')).to.equal('[::1]:5000')
    })

    it('refuses anything that is no host[:port], with exit 2', function () {
      for (const bad of ['', 'http://', 'registry.lab:5000/path', 'has space', 'registry.lab:0', 'registry.lab:70000', 'host:port', '-host', 'user:pw@host']) {
        expect(() => insecureRegistryHost(bad), bad).to.throw(KodError).with.property('exit', ExitCode.usage)
      }
      for (const withSecret of ['https://user:secret@host', 'user:secret@host']) expect(() => insecureRegistryHost(withSecret)).to.throw(KodError).with.property('message').that.does.not.include('secret')
    })
  })
})
