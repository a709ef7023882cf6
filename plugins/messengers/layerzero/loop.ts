/** The local LayerZero agents' polling loop and the lock that serialises their writes (core/loop.ts). */
export {
  createSerialLock,
  type PollLoop as WakeablePollLoop,
  runPollLoop as runWakeablePollLoop,
  type SerialLock,
  sleep,
} from '../../../core/loop.ts'
