#!/usr/bin/env bash
# The main job end to end on the default emulated board (mps2-an386, Cortex-M4F):
# train -> quantize -> convert -> build -> run in QEMU, verified against TFLite Micro.
set -euo pipefail
cd "$(dirname "$0")/.."
td=.venv/bin/tinydeploy
$td train --dataset iot-sensors --arch mlp -o build/iot.keras
$td quantize build/iot.keras -o build/iot.tflite
$td convert build/iot.tflite -o build/model/
$td build build/iot.tflite --board mps2-an386
$td run build/iot.tflite --board mps2-an386 --vectors 50
