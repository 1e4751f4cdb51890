// hex_rom: read-only memory with PORTS one-cycle synchronous read ports,
// initialised from a $readmemh file. This is the one place where the RTL
// loads parameter files (Linear rows, biases, shifts, LERP tables).
//
// The file is <dir>/<FILE>. In simulation <dir> is taken at run time from
// the plusarg +hexdir=<dir> (so nothing path-dependent is compiled into a
// simulator); without the plusarg, and always in synthesis, <dir> is the
// parameter HEXDIR. The layout of every file is described in
// fpga/README.md ("Parameter files"): one memory word per line, written as
// hexadecimal with the most significant digit first.
//
// Parameters
//   WIDTH   bits per word, >= 1
//   DEPTH   number of words, >= 1
//   AW      address width, 2^AW >= DEPTH
//   PORTS   read ports, >= 1 (2 for a LERP lane's two table entries)
//   FILE    file name inside the hex folder, e.g. "blocks.0.tm.lin.W.hex"
//   HEXDIR  hex folder used when no +hexdir= plusarg is given (synthesis)
//
// Ports (port p in bits [p*AW +: AW] and [p*WIDTH +: WIDTH])
//   clk    clock; data is registered on its rising edge
//   addr   word addresses, 0..DEPTH-1
//   data   words at the addresses presented one clock earlier

`default_nettype none

module hex_rom #(
    parameter integer WIDTH  = 8,
    parameter integer DEPTH  = 96,
    parameter integer AW     = 7,
    parameter integer PORTS  = 1,
    parameter         FILE   = "rom.hex",
    parameter         HEXDIR = "."
) (
    input  wire                   clk,
    input  wire [PORTS*AW-1:0]    addr,
    output reg  [PORTS*WIDTH-1:0] data
);
    reg [WIDTH-1:0] mem [0:DEPTH-1];

`ifdef SYNTHESIS
    initial $readmemh({HEXDIR, "/", FILE}, mem);
`else
    reg [8*1024-1:0] dir;  // the +hexdir= plusarg, at most 1024 characters
    initial begin
        if ($value$plusargs("hexdir=%s", dir)) $readmemh({dir, "/", FILE}, mem);
        else $readmemh({HEXDIR, "/", FILE}, mem);
    end
`endif

    integer p;
    always @(posedge clk)
        for (p = 0; p < PORTS; p = p + 1) data[p*WIDTH +: WIDTH] <= mem[addr[p*AW +: AW]];
endmodule

`default_nettype wire
