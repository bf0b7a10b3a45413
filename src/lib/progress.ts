import {Listr, type ListrTask} from 'listr2'

export type Step = ListrTask<unknown>

/**
 * Runs steps with a listr2 progress display, or silently (under --json, --list-commands, or when
 * stdout is not a terminal). Errors propagate unchanged.
 */
export async function runSteps(steps: Step[], options: {quiet: boolean; concurrent?: boolean | number}): Promise<void> {
  const list = new Listr(steps, {
    concurrent: options.concurrent ?? false,
    exitOnError: true,
    registerSignalListeners: false,
    silentRendererCondition: options.quiet || !process.stdout.isTTY,
    rendererOptions: {collapseSubtasks: false, showErrorMessage: false},
  })
  await list.run()
}
