import {
  DefaultRenderer,
  Listr,
  ListrLogger,
  type ListrRendererFactory,
  type ListrTask,
  type ListrTaskObject,
  ListrTaskEventType,
  ListrTaskState,
  type ListrTaskWrapper,
  ProcessOutput,
} from 'listr2'

import {formatDuration} from './bounds.js'
import {formatSize} from './format.js'

export type Step = ListrTask<unknown>
type StepWrapper = ListrTaskWrapper<unknown, ListrRendererFactory, ListrRendererFactory>

/**
 * A step that says what it is doing while it runs and what it did once done, so that the plain line a CI
 * log gets for a finished step reads as what happened ("Verified …", not "Verify …").
 */
export function step(doing: string, did: string, run: () => Promise<unknown>): Step {
  return {
    title: doing,
    async task(_, task) {
      await run()
      task.title = did
    },
  }
}

/**
 * How progress is shown. Progress always goes to stderr, so stdout keeps only the command's result:
 * - `live`: listr2's display, redrawn in place, when stderr is a terminal (whatever stdout is: piping
 *   the result somewhere must not hide what kod is doing);
 * - `plain`: one line per finished step when stderr is not a terminal (CI logs, pipes), never silence;
 * - `quiet`: nothing, when the caller says so (--json, where stderr keeps warnings and errors only,
 *   and --list-commands).
 */
export type ProgressMode = 'live' | 'plain' | 'quiet'

export function progressMode(quiet: boolean, stderr: {isTTY?: boolean; columns?: number} = process.stderr): ProgressMode {
  if (quiet) return 'quiet'
  // A terminal that reports no width (script(1) without a size) would get the live display one character a line.
  return stderr.isTTY && (stderr.columns === undefined || stderr.columns > 0) ? 'live' : 'plain'
}

/**
 * listr2's interactive display, drawn on stderr. listr2 only draws when stdout is a terminal; this
 * renderer tells it not to ask, and its output is pointed at stderr in runSteps.
 */
class StderrRenderer extends DefaultRenderer {
  static override nonTTY = true
}

type ObservedTask = ListrTaskObject<unknown, ListrRendererFactory, ListrRendererFactory>

/**
 * One line on stderr per finished step: the step's title when it completes (steps set their title
 * to what they did, e.g. "pulled 3/11 docker.io/library/nginx:1.25 (12.3 MiB)"). Nothing animated,
 * nothing for failures: the error itself is reported once, by the command.
 */
class PlainRenderer {
  static nonTTY = true
  static rendererOptions = {}
  static rendererTaskOptions = {}

  constructor(private readonly tasks: ObservedTask[]) {}

  render(): void {
    this.watch(this.tasks)
  }

  end(): void {}

  private watch(tasks: ObservedTask[]): void {
    for (const task of tasks) {
      task.on(ListrTaskEventType.SUBTASK, (subtasks) => this.watch(subtasks))
      task.on(ListrTaskEventType.STATE, (state) => {
        if (state === ListrTaskState.COMPLETED && task.hasTitle()) process.stderr.write(`${task.title}\n`)
      })
    }
  }
}

/**
 * Where the live display writes: stderr. When stdout is the same terminal it is held back while the
 * display runs (listr2 replays it after), so the two never interleave; a piped stdout is left alone.
 */
function stderrOutput(): ProcessOutput {
  return new ProcessOutput(process.stderr, process.stdout.isTTY ? process.stdout : process.stderr)
}

/**
 * Runs steps with progress on stderr (see ProgressMode): `quiet` silences it. Errors propagate
 * unchanged. A step that finishes should set its title to what it did, for the plain lines.
 */
export async function runSteps(steps: Step[], options: {quiet: boolean; concurrent?: boolean | number}): Promise<void> {
  const mode = progressMode(options.quiet)
  plainHeartbeats = mode === 'plain'
  const base = {concurrent: options.concurrent ?? false, exitOnError: true, registerSignalListeners: false}
  const list =
    mode === 'live'
      ? new Listr(steps, {
          ...base,
          renderer: StderrRenderer,
          rendererOptions: {
            collapseSubtasks: false,
            showErrorMessage: false,
            logger: new ListrLogger({useIcons: true, processOutput: stderrOutput()}),
          },
        })
      : new Listr(steps, {...base, renderer: mode === 'plain' ? PlainRenderer : 'silent'})
  await list.run()
}

/** Whether slow steps print a line now and then (plain mode: nothing redraws, so silence would look like a hang). */
let plainHeartbeats = false

/** A slow step starts saying how long it has waited after this long, and says it again this often. */
export const HEARTBEAT_AFTER_MS = 10_000
const LIVE_EVERY_MS = 1000
const PLAIN_EVERY_MS = 30_000

/**
 * Runs `work` while keeping its step's voice: once it has taken HEARTBEAT_AFTER_MS, the title says what
 * it is still waiting for and for how long (`1/3 <image>: still pulling, 45s`), redrawn every second
 * in live mode, and printed as a line every 30 s in plain mode (a CI log otherwise shows nothing until
 * the step ends).
 */
export async function keepSaying<T>(task: {title?: string | string[]}, title: string, waiting: string, work: () => Promise<T>): Promise<T> {
  const started = Date.now()
  let printed = 0
  const beat = (): void => {
    const elapsed = Date.now() - started
    task.title = `${title}: still ${waiting}, ${formatDuration(elapsed)}`
    if (plainHeartbeats && elapsed - printed >= (printed === 0 ? HEARTBEAT_AFTER_MS : PLAIN_EVERY_MS) - LIVE_EVERY_MS / 2) {
      printed = elapsed
      process.stderr.write(`${task.title as string}\n`)
    }
  }
  let timer: NodeJS.Timeout | undefined
  const first = setTimeout(() => {
    beat()
    timer = setInterval(beat, LIVE_EVERY_MS)
  }, HEARTBEAT_AFTER_MS)
  try {
    return await work()
  } finally {
    clearTimeout(first)
    clearInterval(timer)
  }
}

/** One unit of counted work: an image to pull or push. */
export interface CountedItem {
  /** What moves, e.g. the image reference. */
  title: string
  /** Its size, when known before it moves (pushes). */
  bytes?: number
  /**
   * Does the work; resolves to the size when that is only known afterwards (pulls), or to `{skipped}`,
   * why nothing had to move (an image the registry already holds).
   */
  run(): Promise<number | void | {skipped: string}>
}

/** Words for counted work: {doing: 'Pull', did: 'pulled', noun: 'image(s)'}. */
export interface CountedWords {
  doing: string
  did: string
  noun: string
  /** What a slow item says it is still doing ('pulling'); default: doing, lower-cased, + 'ing'. */
  ongoing?: string
  /** What the summary calls items skipped ('already in registry.local'); default: 'skipped'. */
  skipped?: string
}

function capitalised(word: string): string {
  return word.charAt(0).toUpperCase() + word.slice(1)
}

/**
 * Subtasks that count: each item's title shows `3/11 <item>`, and `<did> 3/11 <item> (12.3 MiB)`
 * once done (a plain line each); the parent's title shows how many are done and how many bytes
 * moved (of how many, when every size is known up front), then `<Did> 11 image(s), 45.0 MiB` (and how
 * many were skipped: `Pushed 1 image(s), 1.0 KiB; 1 already in registry.local`).
 */
export function countedSubtasks(parent: StepWrapper, items: CountedItem[], words: CountedWords): Listr<unknown, ListrRendererFactory, ListrRendererFactory> {
  const total = items.length
  const sizes = items.map((item) => item.bytes)
  const known = sizes.every((size) => size !== undefined) ? sizes.reduce<number>((sum, size) => sum + (size ?? 0), 0) : undefined
  let done = 0
  let skipped = 0
  let bytes = 0
  const summary = (): string => `${capitalised(words.did)} ${total - skipped} ${words.noun}, ${formatSize(bytes)}${skipped > 0 ? `; ${skipped} ${words.skipped ?? 'skipped'}` : ''}`
  const running = (): string =>
    `${words.doing} ${total} ${words.noun}: ${done}/${total} done, ${formatSize(bytes)}${known === undefined ? '' : ` of ${formatSize(known)}`}`
  parent.title = total === 0 ? summary() : running()
  const sized = (item: CountedItem): string => (item.bytes === undefined ? item.title : `${item.title} (${formatSize(item.bytes)})`)
  return parent.newListr(
    items.map((item, index) => ({
      title: `${index + 1}/${total} ${sized(item)}`,
      task: async (_: unknown, task: StepWrapper) => {
        task.title = `${done + 1}/${total} ${sized(item)}`
        const outcome = await keepSaying(task, task.title, words.ongoing ?? `${words.doing.toLowerCase()}ing`, () => item.run())
        done++
        if (typeof outcome === 'object') {
          skipped++
          task.title = `${done}/${total} ${item.title}: ${outcome.skipped}`
        } else {
          const size = outcome ?? item.bytes ?? 0
          bytes += size
          task.title = `${words.did} ${done}/${total} ${item.title} (${formatSize(size)})`
        }
        parent.title = done === total ? summary() : running()
      },
    })),
    {concurrent: false, exitOnError: true},
  )
}
