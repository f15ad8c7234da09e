/** Wall times of a suite's steps, printed at its end (suites assert behaviour, never time). */
export class Timings {
  readonly lines: string[] = [];

  /** Runs `f` and notes how long it took, also when it fails. */
  async time<T>(what: string, f: () => Promise<T>): Promise<T> {
    const started = Date.now();
    try {
      return await f();
    } finally {
      this.note(`${what}: ${((Date.now() - started) / 1000).toFixed(1)} s`);
    }
  }

  note(line: string): void {
    this.lines.push(line);
  }

  print(suite: string): void {
    process.stdout.write(`${suite} timings:\n  ${this.lines.join("\n  ")}\n`);
  }
}
