// lut_rom: two-port read-only memory of signed 8-bit LERP table entries
// (the memory that lerp_unit expects), one-cycle synchronous reads,
// initialised from a $readmemh file: one byte per line, feature-major,
// 2^M + 1 entries per feature (see fpga/README.md, "Parameter files").
//
// The file is <dir>/<FILE>; <dir> comes from the plusarg +hexdir=<dir> in
// simulation and from the parameter HEXDIR otherwise (as in hex_rom).
//
// Parameters
//   DEPTH   number of entries (features * (2^M + 1)), >= 1
//   AW      address width, 2^AW >= DEPTH
//   FILE    file name inside the hex folder, e.g. "blocks.0.mlp.lut1.hex"
//   HEXDIR  hex folder used when no +hexdir= plusarg is given (synthesis)
//
// Ports
//   clk              clock; both read ports registered on its rising edge
//   addr_a, addr_b   entry addresses
//   data_a, data_b   the entries at the addresses presented one clock earlier

`default_nettype none

module lut_rom #(
    parameter integer DEPTH  = 65,
    parameter integer AW     = 7,
    parameter         FILE   = "lut.hex",
    parameter         HEXDIR = "."
) (
    input  wire                 clk,
    input  wire [AW-1:0]        addr_a,
    input  wire [AW-1:0]        addr_b,
    output reg  signed [7:0]    data_a,
    output reg  signed [7:0]    data_b
);
    reg signed [7:0] mem [0:DEPTH-1];

`ifdef SYNTHESIS
    initial $readmemh({HEXDIR, "/", FILE}, mem);
`else
    reg [8*1024-1:0] dir;  // the +hexdir= plusarg, at most 1024 characters
    initial begin
        if ($value$plusargs("hexdir=%s", dir)) $readmemh({dir, "/", FILE}, mem);
        else $readmemh({HEXDIR, "/", FILE}, mem);
    end
`endif

    always @(posedge clk) begin
        data_a <= mem[addr_a];
        data_b <= mem[addr_b];
    end
endmodule

`default_nettype wire
