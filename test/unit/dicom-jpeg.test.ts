/**
 * JPEG transfer syntaxes on files made here from real slices by two small encoders written
 * for the test (no JPEG encoder ships with the project): JPEG lossless, process 14, first-order
 * prediction (1.2.840.10008.1.2.4.70) must decode bit-exactly; JPEG baseline (…4.50) with a
 * unit quantisation table must decode within rounding of the 8-bit originals.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { readDicomSeries } from '../../main/engine/volume/io/dicom/read-series.ts';
import { tempDir } from '../helpers.ts';
import { CTHEAD, filesOf, loadDicom, pixelsOf, saveDicom } from './dicom-fixtures.ts';

/** MSB-first bit writer with JPEG byte stuffing. */
class Bits {
  bytes: number[] = [];
  private acc = 0;
  private n = 0;
  put(code: number, len: number): void {
    for (let b = len - 1; b >= 0; b--) {
      this.acc = (this.acc << 1) | ((code >> b) & 1);
      if (++this.n === 8) {
        this.bytes.push(this.acc);
        if (this.acc === 0xff) this.bytes.push(0);
        this.acc = 0;
        this.n = 0;
      }
    }
  }
  flush(): void {
    while (this.n) this.put(1, 1);
  }
}

const category = (d: number): number => (d === 0 ? 0 : 32 - Math.clz32(Math.abs(d)));
const extraBits = (d: number, s: number): number => (d > 0 ? d : d - 1) & ((1 << s) - 1);
const u16 = (v: number): number[] => [v >> 8, v & 0xff];

/** Huffman table segment where every symbol has a code of the same length (code = index). */
function dht(tableClass: number, symbols: number[], length: number): number[] {
  const bits = new Array(16).fill(0);
  bits[length - 1] = symbols.length;
  return [0xff, 0xc4, ...u16(2 + 1 + 16 + symbols.length), tableClass << 4, ...bits, ...symbols];
}

/** JPEG lossless (SOF3), predictor 1, 16-bit samples. */
function jpegLossless(px: Uint16Array, rows: number, cols: number): ArrayBuffer {
  const out = [0xff, 0xd8, 0xff, 0xc3, 0, 11, 16, ...u16(rows), ...u16(cols), 1, 1, 0x11, 0];
  out.push(...dht(0, [...Array(17).keys()], 5));
  out.push(0xff, 0xda, 0, 8, 1, 1, 0x00, 1, 0, 0);
  const w = new Bits();
  for (let r = 0; r < rows; r++)
    for (let c = 0; c < cols; c++) {
      const n = r * cols + c;
      const pred = n === 0 ? 1 << 15 : r === 0 ? px[n - 1] : c === 0 ? px[n - cols] : px[n - 1];
      let d = (px[n] - pred) & 0xffff;
      if (d >= 0x8000) d -= 0x10000;
      const s = d === -32768 ? 16 : category(d);
      w.put(s, 5);
      if (s > 0 && s < 16) w.put(extraBits(d, s), s);
    }
  w.flush();
  return new Uint8Array([...out, ...w.bytes, 0xff, 0xd9]).buffer;
}

/** Zigzag order of the 64 coefficients (index = row * 8 + column). */
const ZIGZAG = (() => {
  const z: number[] = [];
  for (let s = 0; s < 15; s++) {
    const cells: number[] = [];
    for (let r = 0; r < 8; r++) if (s - r >= 0 && s - r < 8) cells.push(r * 8 + (s - r));
    z.push(...(s % 2 === 0 ? cells.reverse() : cells));
  }
  return z;
})();

/** JPEG baseline (SOF0), 8-bit greyscale, quantisation table of ones, flat Huffman tables. */
function jpegBaseline(g: Uint8Array, rows: number, cols: number): ArrayBuffer {
  const acSymbols = [0x00, 0xf0];
  for (let r = 0; r < 16; r++) for (let s = 1; s <= 10; s++) acSymbols.push((r << 4) | s);
  const acCode = new Map(acSymbols.map((s, n) => [s, n]));
  const out = [0xff, 0xd8, 0xff, 0xdb, 0, 67, 0, ...new Array(64).fill(1)];
  out.push(0xff, 0xc0, 0, 11, 8, ...u16(rows), ...u16(cols), 1, 1, 0x11, 0);
  out.push(...dht(0, [...Array(12).keys()], 4), ...dht(1, acSymbols, 8));
  out.push(0xff, 0xda, 0, 8, 1, 1, 0x00, 0, 63, 0);
  const w = new Bits();
  const cos = (x: number, u: number) => Math.cos(((2 * x + 1) * u * Math.PI) / 16);
  let prevDc = 0;
  for (let by = 0; by < rows; by += 8)
    for (let bx = 0; bx < cols; bx += 8) {
      const coef = new Array(64).fill(0);
      for (let v = 0; v < 8; v++)
        for (let u = 0; u < 8; u++) {
          let sum = 0;
          for (let y = 0; y < 8; y++)
            for (let x = 0; x < 8; x++) sum += (g[(by + y) * cols + bx + x] - 128) * cos(x, u) * cos(y, v);
          coef[v * 8 + u] = Math.round(0.25 * (u ? 1 : Math.SQRT1_2) * (v ? 1 : Math.SQRT1_2) * sum);
        }
      const zz = ZIGZAG.map((i) => coef[i]);
      const d = zz[0] - prevDc;
      prevDc = zz[0];
      const s = category(d);
      w.put(s, 4);
      if (s) w.put(extraBits(d, s), s);
      let run = 0;
      for (let k = 1; k < 64; k++) {
        if (zz[k] === 0) {
          run++;
          continue;
        }
        while (run > 15) {
          w.put(acCode.get(0xf0)!, 8);
          run -= 16;
        }
        const sz = category(zz[k]);
        w.put(acCode.get((run << 4) | sz)!, 8);
        w.put(extraBits(zz[k], sz), sz);
        run = 0;
      }
      if (run) w.put(acCode.get(0x00)!, 8);
    }
  w.flush();
  return new Uint8Array([...out, ...w.bytes, 0xff, 0xd9]).buffer;
}

test('JPEG lossless (process 14, selection 1) files made from real slices decode bit-exactly', async () => {
  const { dir, cleanup } = tempDir('sam-dicom-jll-');
  try {
    const srcs = filesOf(CTHEAD).slice(30, 36);
    const files = srcs.map((src, n) => {
      const d = loadDicom(src);
      const px = pixelsOf(d);
      d.ds.PixelData = [jpegLossless(new Uint16Array(px.buffer, px.byteOffset, px.length), 64, 64)];
      d.meta.TransferSyntaxUID = '1.2.840.10008.1.2.4.70';
      const p = join(dir, `${n}.dcm`);
      saveDicom(p, d);
      return p;
    });
    const got = await readDicomSeries(files);
    const ref = await readDicomSeries(srcs);
    assert.deepEqual(Buffer.from(got.data.buffer), Buffer.from(ref.data.buffer));
  } finally {
    cleanup();
  }
});

test('JPEG baseline 8-bit files made from real slices decode within rounding', async () => {
  const { dir, cleanup } = tempDir('sam-dicom-jpg-');
  try {
    const originals: Uint8Array[] = [];
    const files = filesOf(CTHEAD)
      .slice(40, 43)
      .map((src, n) => {
        const d = loadDicom(src);
        const px = pixelsOf(d);
        const g = new Uint8Array(px.length);
        px.forEach((v, i) => (g[i] = Math.max(0, Math.min(255, Math.round(v / 16)))));
        originals.push(g);
        Object.assign(d.ds, {
          BitsAllocated: 8,
          BitsStored: 8,
          HighBit: 7,
          PixelRepresentation: 0,
          PixelData: [jpegBaseline(g, 64, 64)],
        });
        d.meta.TransferSyntaxUID = '1.2.840.10008.1.2.4.50';
        const p = join(dir, `${n}.dcm`);
        saveDicom(p, d);
        return p;
      });
    const got = await readDicomSeries(files);
    assert.deepEqual(got.size, [64, 64, 3]);
    let worst = 0;
    originals.forEach((g, k) => g.forEach((v, n) => (worst = Math.max(worst, Math.abs(got.data[k * 4096 + n] - v)))));
    assert.ok(worst <= 3, `largest difference ${worst}`);
  } finally {
    cleanup();
  }
});
