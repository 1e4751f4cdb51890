// hex_rom: read-only memory with a one-cycle synchronous read port,
// initialised from a $readmemh file.
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
//   FILE    file name inside the hex folder, e.g. "blocks.0.tm.lin.W.hex"
//   HEXDIR  hex folder used when no +hexdir= plusarg is given (synthesis)
//
// Ports
//   clk    clock; data is registered on its rising edge
//   addr   word address, 0..DEPTH-1
//   data   word at the address presented one clock earlier

`default_nettype none

module hex_rom #(
    parameter integer WIDTH  = 8,
    parameter integer DEPTH  = 96,
    parameter integer AW     = 7,
    parameter         FILE   = "rom.hex",
    parameter         HEXDIR = "."
) (
    input  wire             clk,
    input  wire [AW-1:0]    addr,
    output reg  [WIDTH-1:0] data
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

    always @(posedge clk) data <= mem[addr];
endmodule

`default_nettype wire
