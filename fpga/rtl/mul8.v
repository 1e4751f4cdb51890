// mul8: one registered signed 8 x 8 multiplier, the unit every multiply of
// the INT8 designs is built from (so that the number of multipliers of an
// elaborated design can be counted from its instances, see fpga/sim.py
// count_instances):
//
//   p <= a * b      (signed, -16 256 .. 16 384, registered)
//
// On an UltraScale+ part it maps to one DSP48E2 with its multiplier output
// register, or to about 60 LUTs.
//
// Ports
//   clk   clock; p is registered on its rising edge
//   a, b  signed 8-bit operands
//   p     signed 16-bit product of the operands presented one clock earlier

`default_nettype none

module mul8 (
    input  wire               clk,
    input  wire signed [7:0]  a,
    input  wire signed [7:0]  b,
    output reg  signed [15:0] p
);
    always @(posedge clk) p <= a * b;
endmodule

`default_nettype wire
