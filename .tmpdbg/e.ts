import { hashFilesInBackground } from '../src/core/merge/inputHashing';
import { createSafetensorsWriter } from '../src/core/formats/safetensorsWriter';
import { tempFolder } from '../test/unit/merge/executeFixtures';
import { join } from 'node:path';
async function main() {
  const { dir, cleanup } = tempFolder();
  for (let i = 0; i < 3; i++) {
    let t = performance.now();
    await hashFilesInBackground([__filename]).digests;
    const h = performance.now() - t; t = performance.now();
    const w = await createSafetensorsWriter(join(dir, 'x.safetensors'), [{ name: 'a', dtype: 'F32', shape: [10] }], {});
    await w.writeFloat32('a', new Float32Array(10));
    await w.finish({});
    console.log('hash', h.toFixed(1), 'writer', (performance.now() - t).toFixed(1));
  }
  cleanup();
}
void main();
