// stream_fifo: synchronous first-word-fall-through FIFO between two
// valid/ready streams.
//
// A word moves on a rising clock edge where valid and ready are both high.
// out_data is valid whenever out_valid is high (first word falls through);
// in_ready is high while the FIFO has a free slot. Neither ready depends
// combinationally on the other side's valid.
//
// Parameters
//   W    word width in bits, >= 1
//   AW   log2 of the depth, >= 1 (2^AW words)
//
// Ports
//   clk        clock, all registers on its rising edge
//   rst        synchronous active-high reset: the FIFO empties
//   in_valid   in_data carries a word
//   in_ready   the FIFO can take a word this cycle
//   in_data    word to write
//   out_valid  out_data carries the oldest word
//   out_ready  the consumer takes out_data this cycle
//   out_data   the oldest word

`default_nettype none

module stream_fifo #(
    parameter integer W  = 8,
    parameter integer AW = 4
) (
    input  wire         clk,
    input  wire         rst,
    input  wire         in_valid,
    output wire         in_ready,
    input  wire [W-1:0] in_data,
    output wire         out_valid,
    input  wire         out_ready,
    output wire [W-1:0] out_data
);
    reg [W-1:0] mem [0:(1 << AW) - 1];
    reg [AW:0]  wp, rp;   // one extra bit tells full from empty

    wire empty = (wp == rp);
    wire full  = (wp[AW-1:0] == rp[AW-1:0]) && (wp[AW] != rp[AW]);

    assign in_ready  = !full;
    assign out_valid = !empty;
    assign out_data  = mem[rp[AW-1:0]];

    always @(posedge clk) begin
        if (in_valid && !full) mem[wp[AW-1:0]] <= in_data;
    end

    always @(posedge clk) begin
        if (rst) begin
            wp <= {(AW+1){1'b0}};
            rp <= {(AW+1){1'b0}};
        end else begin
            if (in_valid && !full) wp <= wp + 1'b1;
            if (!empty && out_ready) rp <= rp + 1'b1;
        end
    end
endmodule

`default_nettype wire
