import * as vscode from 'vscode';
import { AwdError, CancelledError } from '../core/errors';

/** Name of the output channel every feature writes to (also what users see in the Output view's list). */
export const LOG_CHANNEL_NAME = 'AWD Merge';

let channel: vscode.LogOutputChannel | undefined;

/** The shared "AWD Merge" output channel, created on first use so features need no setup order. */
function outputChannel(): vscode.LogOutputChannel {
  channel ??= vscode.window.createOutputChannel(LOG_CHANNEL_NAME, { log: true });
  return channel;
}

/** The extension's one logger: timestamped lines in the "AWD Merge" output channel. */
export const log = {
  info(message: string): void {
    outputChannel().info(message);
  },
  warn(message: string): void {
    outputChannel().warn(message);
  },
  error(message: string): void {
    outputChannel().error(message);
  },
  /** Reveals the channel in the Output view; keeps the editor focused unless asked otherwise. */
  show(preserveFocus = true): void {
    outputChannel().show(preserveFocus);
  },
};

/** Disposes the channel when the extension deactivates. */
export function registerLog(): vscode.Disposable {
  return new vscode.Disposable(() => {
    channel?.dispose();
    channel = undefined;
  });
}

/**
 * Shows a failure once: the message in a notification and in the log. An AwdError already says what happened
 * and what to do; anything else is a bug, so its stack goes to the log only, never into the notification.
 * A cancellation is what the user asked for and is only logged.
 */
export function reportError(action: string, error: unknown): void {
  if (error instanceof CancelledError) {
    log.info(`${action}: cancelled`);
    return;
  }
  if (error instanceof AwdError) {
    log.error(`${action}: ${error.message}`);
    void vscode.window.showErrorMessage(`${action}: ${error.message}`);
    return;
  }
  const message = error instanceof Error ? error.message : String(error);
  log.error(`${action}: unexpected error: ${error instanceof Error && error.stack ? error.stack : message}`);
  void vscode.window.showErrorMessage(`${action} failed unexpectedly: ${message}`, 'Show Log').then((choice) => {
    if (choice === 'Show Log') log.show(false);
  });
}
