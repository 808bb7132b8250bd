import { unpickle } from '../src/core/formats/pickle';
import { TorchPersistentLoader, flattenTorchObject, resolveTorchGlobal } from '../src/core/formats/torchPickle';
import { AwdError } from '../src/core/errors';
import * as P from '../test/fuzz/pickles';
const cases: [string, Uint8Array][] = [
  ['nested1e5', P.deeplyNestedPickle(1e5)], ['nested1e6', P.deeplyNestedPickle(1e6)], ['marked1e6', P.deeplyMarkedPickle(1e6)],
  ['bomb60', P.sharedReferenceBomb(60, false)], ['bombdict60', P.sharedReferenceBomb(60, true)],
  ['cycle', P.cyclicPickle(false)], ['cycledict', P.cyclicPickle(true)],
];
for (const [name, bytes] of cases) {
  const t0 = process.cpuUsage();
  let out: string;
  try {
    const loader = new TorchPersistentLoader();
    const { value } = unpickle(bytes, { resolveGlobal: resolveTorchGlobal, persistentLoad: loader.load });
    flattenTorchObject(value);
    out = 'data';
  } catch (e) { out = e instanceof AwdError ? 'refused: ' + e.message.slice(0, 150) : 'CRASH ' + String(e).slice(0, 200); }
  const c = process.cpuUsage(t0);
  console.log(name, out, ((c.user + c.system) / 1000).toFixed(0), 'ms');
}
