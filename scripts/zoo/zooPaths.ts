/** Where the zoo lives in the project: the sample workspace that `npm start` opens. */
import { join } from 'node:path';

export const DEFAULT_ZOO_FOLDER = join(__dirname, '..', '..', 'samples', 'workspace', 'zoo');
