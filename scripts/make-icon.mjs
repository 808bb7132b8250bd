#!/usr/bin/env node
// Draws media/icon.png (128×128 RGBA): three models (coloured nodes) whose task vectors meet in one merged model.
// Shapes are signed-distance functions sampled 4×4 per pixel for smooth edges; the PNG is written with node:zlib
// (deflate for the pixel data, crc32 for the chunk checksums), so no image library is needed.
import { writeFileSync, mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { crc32, deflateSync } from 'node:zlib';

const SIZE = 128;
const SUPERSAMPLE = 4;
const out = join(resolve(dirname(fileURLToPath(import.meta.url)), '..'), 'media', 'icon.png');

const hex = (h) => [1, 3, 5].map((i) => parseInt(h.slice(i, i + 2), 16) / 255);
const background = hex('#1e293b');
const merged = hex('#f8fafc');
const inputs = [
  { x: 32, y: 30, color: hex('#38bdf8') },
  { x: 32, y: 64, color: hex('#f472b6') },
  { x: 32, y: 98, color: hex('#facc15') },
];
const target = { x: 94, y: 64 };

/** Distance from (px,py) to a rounded square of side SIZE and corner radius r (negative inside). */
function roundedSquare(px, py, r) {
  const h = SIZE / 2;
  const qx = Math.abs(px - h) - (h - r);
  const qy = Math.abs(py - h) - (h - r);
  return Math.hypot(Math.max(qx, 0), Math.max(qy, 0)) + Math.min(Math.max(qx, qy), 0) - r;
}

/** Distance from (px,py) to the segment a→b, minus half the stroke width. */
function segment(px, py, a, b, width) {
  const dx = b.x - a.x;
  const dy = b.y - a.y;
  const t = Math.max(0, Math.min(1, ((px - a.x) * dx + (py - a.y) * dy) / (dx * dx + dy * dy)));
  return Math.hypot(px - (a.x + t * dx), py - (a.y + t * dy)) - width / 2;
}

const circle = (px, py, c, r) => Math.hypot(px - c.x, py - c.y) - r;

/** Colour and opacity of one sample: layers painted back to front. */
function sample(px, py) {
  if (roundedSquare(px, py, 26) > 0) return [0, 0, 0, 0];
  let rgb = background;
  const paint = (inside, color, alpha = 1) => {
    if (inside) rgb = rgb.map((v, i) => v * (1 - alpha) + color[i] * alpha);
  };
  for (const n of inputs) paint(segment(px, py, n, target, 7) <= 0, n.color, 0.75);
  for (const n of inputs) paint(circle(px, py, n, 11) <= 0, n.color);
  paint(circle(px, py, target, 21) <= 0, merged);
  paint(circle(px, py, target, 9) <= 0, background);
  return [...rgb, 1];
}

const raw = Buffer.alloc(SIZE * (SIZE * 4 + 1));
for (let y = 0; y < SIZE; y++) {
  raw[y * (SIZE * 4 + 1)] = 0; // filter type "none" for every scanline
  for (let x = 0; x < SIZE; x++) {
    const acc = [0, 0, 0, 0];
    for (let sy = 0; sy < SUPERSAMPLE; sy++) {
      for (let sx = 0; sx < SUPERSAMPLE; sx++) {
        const [r, g, b, a] = sample(x + (sx + 0.5) / SUPERSAMPLE, y + (sy + 0.5) / SUPERSAMPLE);
        // Average premultiplied colour so transparent corner samples do not darken the edge.
        acc[0] += r * a;
        acc[1] += g * a;
        acc[2] += b * a;
        acc[3] += a;
      }
    }
    const n = SUPERSAMPLE * SUPERSAMPLE;
    const alpha = acc[3] / n;
    const o = y * (SIZE * 4 + 1) + 1 + x * 4;
    for (let i = 0; i < 3; i++) raw[o + i] = alpha > 0 ? Math.round((acc[i] / acc[3]) * 255) : 0;
    raw[o + 3] = Math.round(alpha * 255);
  }
}

function chunk(type, data) {
  const length = Buffer.alloc(4);
  length.writeUInt32BE(data.length);
  const body = Buffer.concat([Buffer.from(type, 'ascii'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(body));
  return Buffer.concat([length, body, crc]);
}

const header = Buffer.alloc(13);
header.writeUInt32BE(SIZE, 0);
header.writeUInt32BE(SIZE, 4);
header[8] = 8; // bits per channel
header[9] = 6; // RGBA
const png = Buffer.concat([
  Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
  chunk('IHDR', header),
  chunk('IDAT', deflateSync(raw, { level: 9 })),
  chunk('IEND', Buffer.alloc(0)),
]);
mkdirSync(dirname(out), { recursive: true });
writeFileSync(out, png);
console.log(`wrote ${out} (${png.length} bytes)`);
