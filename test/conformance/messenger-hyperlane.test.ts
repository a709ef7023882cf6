import { testMessengerPlugin } from '../../core/conformance/messenger.ts'
import hyperlaneMessenger from '../../plugins/messengers/hyperlane/plugin.ts'

testMessengerPlugin({ name: 'hyperlane', create: () => hyperlaneMessenger })
