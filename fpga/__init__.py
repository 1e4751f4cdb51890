"""8-bit lookup-table activations: export, integer reference, Verilog, simulation.

* ``fpga.lerp8``: bit-exact integer reference of the LERP unit (SPEC section 9);
* ``python -m fpga.export``: per-layer 8-bit tables (+ calibration inputs) from a checkpoint;
* ``python -m fpga.sim``: runs ``rtl/lerp_layer.v`` under Verilator on hex files;
* ``python -m fpga.eval_quantized``: float vs 8-bit-table accuracy of a model.
"""
