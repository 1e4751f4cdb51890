"""8-bit hardware: lookup-table activations and the whole INT8 ResMLP in Verilog.

* ``fpga.lerp8``: bit-exact integer reference of the LERP unit (docs/METHOD.md section 9);
* ``python -m fpga.export``: per-layer 8-bit tables (+ calibration inputs) from a checkpoint;
* ``python -m fpga.sim``: runs ``rtl/lerp_layer.v`` under Verilator on hex files;
* ``python -m fpga.eval_quantized``: float vs 8-bit-table accuracy of a model;
* ``fpga.int_ops`` / ``python -m fpga.int_resmlp``: the integer-only INT8 ResMLP (section 10);
* ``fpga.hexdump``: its parameters as the ``$readmemh`` files the RTL reads;
* ``python -m fpga.sim_resmlp``: the streaming RTL of the whole model (``rtl/resmlp_top.v``)
  under Verilator, bit-exact against ``fpga.int_resmlp``, with its measured II and latency;
* ``python -m fpga.synth_resmlp``: Yosys figures of the pipeline, stage by stage.
"""
