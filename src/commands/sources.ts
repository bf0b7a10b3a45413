import {KodCommand} from '../lib/base-command.js'
import {table} from '../lib/format.js'

interface SourceRow {
  kind: string
  description: string
  flags: Array<{flag: string; commands: string[]; summary: string}>
}

export default class Sources extends KodCommand {
  static override summary = 'List the kinds of package source kod can package (from its plugins), and the flags each adds.'

  static override description = `Each kind comes from a plugin (kod plugins): helm for a chart, helmfile for a helmfile. kod package picks the kind that recognises -c (or the one --kind names). A kind may add flags of its own to package, images and deploy, such as helmfile's -e ENV: they are listed here, and refused for a package of another kind.`

  static override examples = ['<%= config.bin %> <%= command.id %>', '<%= config.bin %> <%= command.id %> --json']

  static override enableJsonFlag = true

  public async run(): Promise<{sources: SourceRow[]}> {
    await this.parse(Sources)
    const rows: SourceRow[] = (await this.sources()).all().map((source) => ({
      kind: source.kind,
      description: source.description,
      flags: (source.flags ?? []).map((flag) => ({
        flag: `${flag.char ? `-${flag.char}, ` : ''}--${flag.name}${flag.type === 'string' ? ' VALUE' : ''}`,
        commands: flag.commands,
        summary: flag.summary,
      })),
    }))
    for (const line of table([['KIND', 'DESCRIPTION'], ...rows.map((row) => [row.kind, row.description])])) this.log(line)
    for (const row of rows.filter((candidate) => candidate.flags.length > 0)) {
      this.log('')
      this.log(`${row.kind} flags:`)
      for (const flag of row.flags) this.log(`  ${flag.flag}  (${flag.commands.join(', ')})  ${flag.summary}`)
    }
    return {sources: rows}
  }
}
