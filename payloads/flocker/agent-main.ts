/** Program entry of `flocker-dataset-agent` (bundled as /usr/sbin/flocker-dataset-agent). */
import './node-require.js';
import { fatal } from '../flags.js';
import { main } from './agent.js';

main(process.argv.slice(2)).catch((error: Error) => fatal('agent', error.stack ?? error.message));
