/**
 * Shared by the provider test doubles: values as `@pulumi/pulumi/provider` hands them over.
 * Its server tells the engine it accepts secrets, so a secret input arrives as the engine's
 * wrapper object ({ [specialSigKey]: specialSecretSig, value }) rather than as the bare value,
 * and an input not yet known (preview) as the `unknownValue` string. The doubles read values
 * through `reveal` and hand the wrappers back untouched in their outputs, so what was secret
 * stays secret in the state.
 */
import { specialSecretSig, specialSigKey, unknownValue } from "@pulumi/pulumi/runtime/rpc";

export type Props = Record<string, any>;

export function isSecret(v: unknown): v is { value: unknown } {
  return typeof v === "object" && v !== null && (v as Props)[specialSigKey] === specialSecretSig;
}

/** `v` with every secret wrapper, however deep, replaced by its value. */
export function reveal(v: any): any {
  if (isSecret(v)) return reveal(v.value);
  if (Array.isArray(v)) return v.map(reveal);
  if (typeof v === "object" && v !== null) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, reveal(x)]));
  return v;
}

/** `v` wrapped as a secret (once). */
export function asSecret(v: unknown): Props {
  return isSecret(v) ? v : { [specialSigKey]: specialSecretSig, value: v };
}

/** Whether `v` is, or holds, a value the engine does not know yet (only in previews). */
export function hasUnknowns(v: unknown): boolean {
  if (v === unknownValue) return true;
  if (Array.isArray(v)) return v.some(hasUnknowns);
  if (typeof v === "object" && v !== null) return Object.values(v).some(hasUnknowns);
  return false;
}

/** A canonical text of `v` (secrets revealed, keys sorted, null and absent alike). */
function canonical(v: any): string {
  const plain = reveal(v);
  const walk = (x: any): any => {
    if (Array.isArray(x)) return x.map(walk);
    if (typeof x === "object" && x !== null) {
      return Object.fromEntries(
        Object.keys(x)
          .filter((k) => x[k] !== undefined && x[k] !== null)
          .sort()
          .map((k) => [k, walk(x[k])]),
      );
    }
    return x;
  };
  return JSON.stringify(walk(plain ?? null)) ?? "null";
}

/** Deep equality of two property values, secret or not (a secret and its plain value are equal). */
export function sameValue(a: unknown, b: unknown): boolean {
  return canonical(a) === canonical(b);
}

/** The keys whose values differ between `olds` and `news`, `ignored` left out, sorted. */
export function changedKeys(olds: Props, news: Props, ignored: string[] = []): string[] {
  return [...new Set([...Object.keys(olds ?? {}), ...Object.keys(news ?? {})])]
    .filter((k) => !ignored.includes(k) && !sameValue(olds?.[k], news?.[k]))
    .sort();
}

/** The resource's name, the last part of its URN. */
export function nameOf(urn: string): string {
  return urn.slice(urn.lastIndexOf("::") + 2);
}
