/**
 * Entry of the `awd-merge` command line: a table of subcommands, each in its own module. User-facing failures (AwdError) print one `error:` line and
 * exit 1; anything else is a bug: exit 2 with its stack.
 */
import { isAwdError } from '../core/errors';
import { TOOL_NAME, TOOL_VERSION } from '../core/version';
import { inspectCommand } from './inspect';
import { mergeCommand, type CommandIo } from './merge';
import { similarityCommand } from './similarity';

interface Command {
  /** One line for the overview. */
  readonly summary: string;
  run(args: readonly string[], io: CommandIo): Promise<number>;
}

export const COMMANDS: Readonly<Record<string, Command>> = {
  inspect: {
    summary: 'list the tensors, dtypes, shapes and metadata of a checkpoint',
    run: inspectCommand,
  },
  merge: {
    summary: 'run a merge config (Task Arithmetic, TIES, DARE, AWD) and write the merged model',
    run: mergeCommand,
  },
  similarity: {
    summary: 'cosine similarity of task vectors (how much fine-tuned models interfere)',
    run: similarityCommand,
  },
};

export function usage(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((n) => n.length));
  return [
    `usage: ${TOOL_NAME} COMMAND [ARGS]   (${TOOL_NAME} COMMAND --help for a command's options)`,
    '',
    ...Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(width)}  ${c.summary}`),
    '',
    `  --version${' '.repeat(Math.max(0, width - 7))}print the version`,
  ].join('\n');
}

/** Runs the command line `argv` (without node and script); returns the exit code. */
export async function main(argv: readonly string[], io: CommandIo): Promise<number> {
  const [name, ...args] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    io.stdout.write(`${usage()}\n`);
    return name === undefined ? 1 : 0;
  }
  if (name === '--version' || name === '-V') {
    io.stdout.write(`${TOOL_NAME} ${TOOL_VERSION}\n`);
    return 0;
  }
  const command = Object.prototype.hasOwnProperty.call(COMMANDS, name) ? COMMANDS[name] : undefined;
  if (!command) {
    io.stderr.write(`error: unknown command "${name}". Commands: ${Object.keys(COMMANDS).join(', ')} (see ${TOOL_NAME} --help)\n`);
    return 1;
  }
  try {
    return await command.run(args, io);
  } catch (e) {
    if (isAwdError(e)) {
      io.stderr.write(`error: ${e.message.replace(/\n/g, ' ')}\n`);
      return 1;
    }
    const err = e instanceof Error ? e : new Error(String(e));
    io.stderr.write(`error: internal error (a bug in ${TOOL_NAME}, please report it): ${err.message}\n${err.stack ?? ''}\n`);
    return 2;
  }
}

if (require.main === module) {
  // A closed pipe (e.g. `| head`) is not an error.
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(0);
  });
  void main(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr }).then((code) => {
    process.exitCode = code;
  });
}
