/** Program entry of `flocker-control` (bundled as /usr/sbin/flocker-control). */
import { fatal } from '../flags.js';
import { main } from './control.js';

main(process.argv.slice(2)).catch((error: Error) => fatal('control', error.stack ?? error.message));
