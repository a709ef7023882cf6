import { testRuntimePlugin } from '../../core/conformance/runtime.ts'
import { onnxRuntime } from '../../plugins/runtimes/onnx/index.ts'

testRuntimePlugin({ name: 'onnx', create: () => onnxRuntime() })
