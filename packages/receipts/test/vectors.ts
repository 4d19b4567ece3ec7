// Loads the known-answer vectors copied into test/vectors/ (provenance in its README).
import { readFileSync } from 'node:fs';

const load = <T>(file: string): T =>
  JSON.parse(readFileSync(new URL(`./vectors/${file}`, import.meta.url), 'utf8')) as T;

export interface Kat {
  hasher: { op: 'emptyRoot' | 'leaf' | 'node'; input?: string; left?: string; right?: string; expect: string }[];
  leaves: { index: number; input: string; leafHash: string }[];
  nodeHashes: { levels: string[][] };
  roots: { treeSize: number; root: string }[];
  inclusion: { leafIndex: number; treeSize: number; leafHash: string; root: string; proof: string[] }[];
  consistency: { size1: number; size2: number; root1: string; root2: string; proof: string[] }[];
}

export type Probe =
  | {
      kind: 'inclusion';
      desc: string;
      file: string;
      leafIndex: number;
      treeSize: number;
      leafHash: string;
      root: string;
      proof: string[];
      strictWantErr: boolean;
    }
  | {
      kind: 'consistency';
      desc: string;
      file: string;
      size1: number;
      size2: number;
      root1: string;
      root2: string;
      proof: string[];
      strictWantErr: boolean;
    };

export interface NoteKat {
  notes: {
    desc: string;
    skey?: string;
    vkey: string;
    keyName: string;
    keyIdHex: string;
    text: string;
    sigBase64: string;
    expect: 'valid' | 'invalid';
    mustReproduceSignature?: boolean;
  }[];
  ed25519: { seed: string; publicKey: string; message: string; signature: string }[];
  tlog: {
    op: string;
    input?: string;
    expectBase64?: string;
    treeSize?: number;
    rootBase64?: string;
    expectText?: string;
  }[];
}

export const kat = load<Kat>('rfc6962-kat.json');
export const probes = load<{ probes: Probe[] }>('rfc6962-probes.json').probes;
export const noteKat = load<NoteKat>('signed-note-kat.json');

/** Hex to bytes, loosely (vectors contain deliberately odd-length hashes). */
export const hex = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s, 'hex'));
export const toHex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
