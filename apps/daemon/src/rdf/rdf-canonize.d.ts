// rdf-canonize 5.0.0 ships no type declarations; these cover the two calls this app makes.
declare module 'rdf-canonize' {
  interface CanonizeOptions {
    algorithm: 'RDFC-1.0';
    inputFormat?: 'application/n-quads';
    format?: 'application/n-quads';
    maxWorkFactor?: number;
    /** Sync only: milliseconds before giving up (checked periodically). */
    timeout?: number;
    signal?: AbortSignal;
    rejectURDNA2015?: boolean;
  }
  /** RDF Dataset Canonicalization (RDFC-1.0); resolves to sorted canonical N-Quads. */
  export function canonize(input: unknown, options: CanonizeOptions): Promise<string>;
  /** The synchronous implementation (Node only); same output as `canonize`. */
  export function _canonizeSync(input: unknown, options: CanonizeOptions): string;
  const rdfCanonize: { canonize: typeof canonize; _canonizeSync: typeof _canonizeSync };
  export default rdfCanonize;
}
