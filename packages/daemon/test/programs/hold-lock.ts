// Takes a data directory's lock and holds it until killed: the other process in the lock test.
import { lockDataDir } from '../../src/lock.js';

lockDataDir(process.argv[2] as string);
process.stdout.write('locked\n');
setInterval(() => {}, 1000);
