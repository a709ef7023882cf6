import { testMessengerPlugin } from '../../core/conformance/messenger.ts'
import layerZeroMessenger from '../../plugins/messengers/layerzero/plugin.ts'

testMessengerPlugin({ name: 'layerzero', create: () => layerZeroMessenger })
