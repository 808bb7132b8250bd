import { unpickle } from '../src/core/formats/pickle';
import { TorchPersistentLoader, flattenTorchObject, resolveTorchGlobal } from '../src/core/formats/torchPickle';
import * as P from '../test/fuzz/pickles';
for (const path of P.CALL_PATHS) {
  try {
    const loader = new TorchPersistentLoader();
    const { value } = unpickle(P.codeReachingPickle('os', 'system', path, 'touch /tmp/x'), { resolveGlobal: resolveTorchGlobal, persistentLoad: loader.load });
    flattenTorchObject(value);
    console.log(path, 'DATA');
  } catch (e) { console.log(path, (e as Error).constructor.name, (e as Error).message.slice(0, 160)); }
}
