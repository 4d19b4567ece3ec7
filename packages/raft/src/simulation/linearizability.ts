/**
 * A linearizability checker for a key-value register history, after Wing & Gong (1993)
 * with Lowe's memoisation (2017), the algorithm behind porcupine and knossos' "linear"
 * checker. Keys are independent objects, so each key's sub-history is checked alone
 * (Herlihy & Wing's locality; porcupine's P-compositionality).
 */

/** One client operation: `ret` is Infinity when the client never learnt the outcome. */
export interface KvOperation {
  readonly client: number;
  readonly kind: 'put' | 'get';
  readonly key: string;
  /** put: the value written (unique per history); get: the value read (null = absent). */
  readonly value: string | null;
  readonly call: number;
  readonly ret: number;
}

export interface LinearizabilityResult {
  readonly ok: boolean;
  /** The key whose history has no linearization. */
  readonly key?: string;
  /** True when the search budget ran out before a verdict (treated as ok). */
  readonly inconclusive: boolean;
}

const MAX_STATES_PER_KEY = 200_000;

/** Checks that some total order of `history` respects real time and register semantics. */
export function checkLinearizable(history: readonly KvOperation[]): LinearizabilityResult {
  const byKey = new Map<string, KvOperation[]>();
  for (const op of history) {
    // A read whose answer never arrived constrains nothing.
    if (op.kind === 'get' && op.ret === Number.POSITIVE_INFINITY) continue;
    const ops = byKey.get(op.key);
    if (ops === undefined) byKey.set(op.key, [op]);
    else ops.push(op);
  }
  let inconclusive = false;
  for (const [key, ops] of byKey) {
    const verdict = checkRegister(ops);
    if (verdict === 'inconclusive') inconclusive = true;
    else if (!verdict) return { ok: false, key, inconclusive };
  }
  return { ok: true, inconclusive };
}

function checkRegister(unsorted: readonly KvOperation[]): boolean | 'inconclusive' {
  const ops = [...unsorted].sort((a, b) => a.call - b.call);
  const n = ops.length;
  const done = new Uint8Array(n);
  let required = 0;
  for (const op of ops) if (op.ret !== Number.POSITIVE_INFINITY) required++;
  const words = new Uint32Array(Math.ceil(n / 32) || 1);
  const seen = new Set<string>();
  let budget = MAX_STATES_PER_KEY;

  const search = (state: string | null, requiredDone: number): boolean | 'inconclusive' => {
    if (requiredDone === required) return true;
    // An op may go next only if it was called before every pending op returned.
    let minRet = Number.POSITIVE_INFINITY;
    for (let i = 0; i < n; i++)
      if (done[i] === 0 && (ops[i] as KvOperation).ret < minRet) minRet = (ops[i] as KvOperation).ret;
    let sawInconclusive = false;
    for (let i = 0; i < n; i++) {
      if (done[i] === 1) continue;
      const op = ops[i] as KvOperation;
      if (op.call > minRet) break;
      let next: string | null;
      if (op.kind === 'put') next = op.value;
      else if (op.value === state) next = state;
      else continue;
      done[i] = 1;
      const word = i >>> 5;
      (words[word] as number) |= 1 << (i & 31);
      const memo = `${words.join(',')}|${next ?? '\u0000'}`;
      let result: boolean | 'inconclusive' = false;
      if (!seen.has(memo)) {
        seen.add(memo);
        if (--budget <= 0) result = 'inconclusive';
        else result = search(next, requiredDone + (op.ret === Number.POSITIVE_INFINITY ? 0 : 1));
      }
      done[i] = 0;
      (words[word] as number) &= ~(1 << (i & 31));
      if (result === true) return true;
      if (result === 'inconclusive') sawInconclusive = true;
      if (budget <= 0) return 'inconclusive';
    }
    return sawInconclusive ? 'inconclusive' : false;
  };
  return search(null, 0);
}
