// Seeded byte-level mutations of checkpoint files, shared by the format fuzz tests (test/unit/formats) and the
// standalone fuzzing harness (test/fuzz): each takes a well-formed file and returns a damaged copy.

/** A uniform [0, 1) source (seededRandom of test/unit/formats/testFiles.ts). */
export type Rand = () => number;

/** A uniform integer in [0, n). */
export const int = (r: Rand, n: number): number => Math.floor(r() * n);

/** A value that makes parsers trip: boundaries, negatives, huge numbers. */
export function nastyNumber(r: Rand): string {
  const options = ['0', '-1', '1e300', '9007199254740993', '4294967296', '18446744073709551615', '1.5', '""', 'null', '[]', '{}', String(int(r, 1 << 20))];
  return options[int(r, options.length)]!;
}

/** One random mutation of `src`: bit flips, truncation, random run, deleted/duplicated run, header number edit, length prefix. */
export function mutate(src: Uint8Array, r: Rand): Uint8Array {
  const out = src.slice();
  switch (int(r, 6)) {
    case 0: {
      // Flip 1–8 random bits, biased to the first 256 bytes where the headers live.
      const flips = 1 + int(r, 8);
      for (let k = 0; k < flips; k++) {
        const at = r() < 0.7 ? int(r, Math.min(256, out.length)) : int(r, out.length);
        out[at]! ^= 1 << int(r, 8);
      }
      return out;
    }
    case 1:
      return out.subarray(0, int(r, out.length));
    case 2: {
      // Overwrite a run with random bytes.
      const at = int(r, out.length);
      for (let k = at; k < Math.min(out.length, at + 1 + int(r, 16)); k++) out[k] = int(r, 256);
      return out;
    }
    case 3: {
      // Delete or duplicate a run (shifts every offset after it).
      const at = int(r, out.length);
      const len = 1 + int(r, 32);
      return r() < 0.5
        ? new Uint8Array([...out.subarray(0, at), ...out.subarray(at + len)])
        : new Uint8Array([...out.subarray(0, at + len), ...out.subarray(at)]);
    }
    case 4: {
      // Header edit: replace a number in the text part with a nasty one (safetensors/npy headers are text).
      const text = new TextDecoder('latin1').decode(out.subarray(0, Math.min(out.length, 4096)));
      const numbers = [...text.matchAll(/\d+/g)];
      if (numbers.length === 0) return out;
      const m = numbers[int(r, numbers.length)]!;
      const edited = text.slice(0, m.index) + nastyNumber(r) + text.slice(m.index + m[0].length);
      const head = Uint8Array.from(edited, (c) => c.charCodeAt(0) & 0xff);
      return new Uint8Array([...head, ...out.subarray(Math.min(out.length, 4096))]);
    }
    default: {
      // Rewrite the 8-byte length prefix (safetensors) / version+length (npy) with a random or extreme value.
      const view = new DataView(out.buffer, out.byteOffset, out.byteLength);
      if (out.length >= 8) {
        const choices = [0n, 1n, 7n, 2n ** 63n, 2n ** 64n - 1n, BigInt(out.length), BigInt(int(r, out.length + 64))];
        view.setBigUint64(0, choices[int(r, choices.length)]!, true);
      }
      return out;
    }
  }
}

const EXTREMES = [0xff, 0x7f, 0x80, 0x00];

/**
 * One mutation confined to bytes [lo, hi) of `data` (e.g. a pickle inside an archive): flips, a truncation, a
 * deleted range, or a run of extreme bytes (which turns length fields into lies).
 */
export function mutateRegion(data: Uint8Array, r: Rand, region: readonly [number, number] = [0, data.length]): Uint8Array {
  const [lo, hi] = region;
  const at = (): number => lo + int(r, hi - lo);
  switch (int(r, 4)) {
    case 0: {
      const out = data.slice();
      const flips = 1 + int(r, 4);
      for (let i = 0; i < flips; i++) out[at()]! ^= 1 << int(r, 8);
      return out;
    }
    case 1:
      return data.slice(0, at());
    case 2: {
      const start = at();
      return new Uint8Array([...data.subarray(0, start), ...data.subarray(start + 1 + int(r, 16))]);
    }
    default: {
      const out = data.slice();
      const start = at();
      out.fill(EXTREMES[int(r, EXTREMES.length)]!, start, Math.min(out.length, start + 1 + int(r, 8)));
      return out;
    }
  }
}
