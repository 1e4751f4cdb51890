// word_ram: simple dual-port RAM, one write port and one synchronous read
// port (block RAM or LUT RAM), no initial contents.
//
// Parameters
//   W      bits per word, >= 1
//   DEPTH  words, >= 1
//   AW     address width, 2^AW >= DEPTH
//
// Ports
//   clk            clock; writes and the read register on its rising edge
//   we, waddr, wdata   write wdata at waddr
//   raddr, rdata       rdata holds the word at the raddr of one clock earlier
//                      (old data when the same word is written in that clock)

`default_nettype none

module word_ram #(
    parameter integer W     = 128,
    parameter integer DEPTH = 64,
    parameter integer AW    = 6
) (
    input  wire          clk,
    input  wire          we,
    input  wire [AW-1:0] waddr,
    input  wire [W-1:0]  wdata,
    input  wire [AW-1:0] raddr,
    output reg  [W-1:0]  rdata
);
    reg [W-1:0] mem [0:DEPTH-1];
    always @(posedge clk) begin
        if (we) mem[waddr] <= wdata;
        rdata <= mem[raddr];
    end
endmodule

`default_nettype wire
