/**
 * TEST DOUBLE of the `random` provider plugin, version 4.21.2 (pulumi-resource-random), written
 * for this repository's end-to-end tests, which run the real Pulumi CLI where the real plugin is
 * not available (CI). It is not the real provider and implements only what this program uses:
 * `random:index/randomPassword:RandomPassword`, with the inputs @pulumi/random declares.
 *   - check: the real provider's defaults filled in (upper, lower, numeric/number and special
 *     on; the minimums 0); `number` (deprecated) and `numeric` take each other's value when
 *     only one is set, and fail the check when set to different values; `length` must be at
 *     least 1 and at least the sum of the minimums; some character class must be on.
 *   - diff: any input change replaces (the real schema makes every input force a new one).
 *   - create: a password from node's crypto: each minimum drawn from its class (even a class
 *     that is off, as the real provider does), the rest from the enabled classes (specials:
 *     `overrideSpecial` when non-empty, else !@#$%&*()-_=+[]{}<>:?), shuffled. Outputs: the
 *     inputs plus `result`; the SDK marks `result` secret (additionalSecretOutputs).
 *     `bcryptHash` is NOT produced (node has no bcrypt; the program never reads it).
 *   - update never happens (everything replaces); delete and read keep nothing else.
 * Other random resources (RandomString, RandomBytes, ...) are not implemented.
 *
 * Run as a plugin by the launcher that install.ts writes; imported by the unit test.
 */
import { randomInt } from "crypto";
import * as provider from "@pulumi/pulumi/provider";
import { unknownValue } from "@pulumi/pulumi/runtime/rpc";
import { serveDouble } from "./serve";
import { Props, changedKeys, reveal } from "./wire";

export const RANDOM_PROVIDER_DOUBLE_VERSION = "4.21.2";
const PASSWORD = "random:index/randomPassword:RandomPassword";
const WHO = "random provider double";

/** The inputs @pulumi/random 4.21.2 declares for RandomPassword. */
const INPUTS = ["keepers", "length", "lower", "minLower", "minNumeric", "minSpecial", "minUpper", "number", "numeric", "overrideSpecial", "special", "upper"];
const UPPER = "ABCDEFGHIJKLMNOPQRSTUVWXYZ";
const LOWER = "abcdefghijklmnopqrstuvwxyz";
const NUMERIC = "0123456789";
const SPECIAL = "!@#$%&*()-_=+[]{}<>:?";

const known = (v: unknown) => v !== undefined && v !== null && v !== unknownValue;

/** A password as the real provider makes one, from already-checked inputs (revealed). */
export function generatePassword(p: Props): string {
  const specials = p.overrideSpecial ? String(p.overrideSpecial) : SPECIAL;
  const draw = (chars: string, n: number) => Array.from({ length: Math.max(0, n) }, () => chars[randomInt(chars.length)]);
  const chars = (p.upper ? UPPER : "") + (p.lower ? LOWER : "") + (p.numeric ? NUMERIC : "") + (p.special ? specials : "");
  const picked = [...draw(UPPER, p.minUpper), ...draw(LOWER, p.minLower), ...draw(NUMERIC, p.minNumeric), ...draw(specials, p.minSpecial)];
  picked.push(...draw(chars, p.length - picked.length));
  // Fisher-Yates, so the required characters are not all at the start.
  for (let i = picked.length - 1; i > 0; i--) {
    const j = randomInt(i + 1);
    [picked[i], picked[j]] = [picked[j], picked[i]];
  }
  return picked.join("");
}

/** The inputs a diff finds changed; `result` (and a real provider's bcryptHash) are outputs. */
export function passwordChangedKeys(olds: Props, news: Props): string[] {
  const inputsOf = (p: Props) => Object.fromEntries(INPUTS.map((k) => [k, p?.[k]]));
  return changedKeys(inputsOf(olds), inputsOf(news));
}

function requirePassword(urn: string): void {
  const type = urn.split("::")[2]?.split("$").pop();
  if (type !== PASSWORD) throw new Error(`${WHO}: resource type ${type} is not implemented by this test double (only ${PASSWORD})`);
}

export function randomProviderDouble(): provider.Provider {
  return {
    version: RANDOM_PROVIDER_DOUBLE_VERSION,

    async check(urn, _olds, news) {
      requirePassword(urn);
      const failures: provider.CheckFailure[] = [];
      const inputs: Props = { ...news };
      for (const k of ["upper", "lower", "special"]) if (!known(reveal(inputs[k])) && inputs[k] !== unknownValue) inputs[k] = true;
      for (const k of ["minUpper", "minLower", "minNumeric", "minSpecial"]) if (!known(reveal(inputs[k])) && inputs[k] !== unknownValue) inputs[k] = 0;
      const number = reveal(inputs.number);
      const numeric = reveal(inputs.numeric);
      if (known(number) && known(numeric) && number !== numeric) {
        failures.push({ property: "numeric", reason: `${WHO}: number and numeric are set to different values (number is deprecated: use numeric)` });
      } else if (number !== unknownValue && numeric !== unknownValue) {
        const value = known(numeric) ? numeric : known(number) ? number : true;
        inputs.number = value;
        inputs.numeric = value;
      }
      const p = reveal(inputs);
      const unknown = INPUTS.some((k) => p[k] === unknownValue);
      if (!unknown) {
        const mins = p.minUpper + p.minLower + p.minNumeric + p.minSpecial;
        if (!Number.isInteger(p.length) || p.length < 1) failures.push({ property: "length", reason: `${WHO}: length must be an integer of at least 1` });
        else if (p.length < mins) failures.push({ property: "length", reason: `${WHO}: length ${p.length} is less than the sum of the minimums (${mins})` });
        if (!p.upper && !p.lower && !p.numeric && !p.special && p.length > mins) {
          failures.push({ property: "special", reason: `${WHO}: no character class is enabled` });
        }
      }
      return { inputs, failures };
    },

    async diff(_id, urn, olds, news) {
      requirePassword(urn);
      const changed = passwordChangedKeys(olds, news);
      return { changes: changed.length > 0, replaces: changed, deleteBeforeReplace: false };
    },

    async create(urn, inputs) {
      requirePassword(urn);
      // The real provider's id for a password is "none".
      return { id: "none", outs: { ...inputs, result: generatePassword(reveal(inputs)) } };
    },

    async read(id, _urn, props) {
      return { id, props };
    },

    async update(_id, urn) {
      throw new Error(`${WHO}: ${urn} cannot be updated, only replaced (every input forces a new password)`);
    },

    async delete() {
      // Nothing exists outside the state.
    },
  };
}

if (require.main === module) {
  void serveDouble(randomProviderDouble(), (_urn, olds, news) => passwordChangedKeys(olds, news), process.argv.slice(2));
}
