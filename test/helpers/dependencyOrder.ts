/**
 * Order in a program run recorded under the mocks: what a resource waits for before the engine
 * creates it. A resource waits for its dependencies and for its parent, which is registered only
 * once the component's own dependencies are done; each of those waits the same way.
 */
import type { ProgramRun, RecordedResource } from "./pulumiMocks";

/** Whether FROM is created only after TO, through dependencies and parents, transitively. */
export function waitsFor(run: ProgramRun, from: RecordedResource, to: RecordedResource): boolean {
  const seen = new Set<string>();
  const queue = [...from.dependencies, from.parent];
  while (queue.length > 0) {
    const urn = queue.pop()!;
    if (urn === to.urn) return true;
    if (!urn || seen.has(urn)) continue;
    seen.add(urn);
    const r = run.resources.find((x) => x.urn === urn);
    if (r) queue.push(...r.dependencies, r.parent);
  }
  return false;
}

/** The resources under COMPONENT: its children, theirs, and so on. */
export function descendants(run: ProgramRun, component: RecordedResource): RecordedResource[] {
  const children = run.resources.filter((r) => r.parent === component.urn);
  return children.flatMap((c) => [c, ...descendants(run, c)]);
}
