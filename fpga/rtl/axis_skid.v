// axis_skid: a registered slice (skid buffer) for a valid/ready stream such
// as AXI4-Stream: every output is a register, so no combinational path runs
// through it in either direction, and it still passes one word per clock.
//
// The output word sits in an output register; when the consumer stalls
// while a word is arriving, that word is kept in a second (skid) register
// and in_ready drops on the next clock. Words leave in order, none is lost
// or repeated. Latency one clock.
//
// Parameters
//   W    word width in bits (tdata and any side bits such as tlast), >= 1
//
// Ports
//   clk, rst                       clock; synchronous active-high reset (both registers empty)
//   in_valid, in_ready, in_data    input stream (in_ready is a register)
//   out_valid, out_ready, out_data output stream (out_valid and out_data are registers)

`default_nettype none

module axis_skid #(
    parameter integer W = 8
) (
    input  wire         clk,
    input  wire         rst,
    input  wire         in_valid,
    output reg          in_ready,
    input  wire [W-1:0] in_data,
    output reg          out_valid,
    input  wire         out_ready,
    output reg  [W-1:0] out_data
);
    reg [W-1:0] skid;
    reg         skid_valid;
    wire        take = in_valid && in_ready;
    always @(posedge clk) begin
        if (rst) begin
            out_valid  <= 1'b0;
            skid_valid <= 1'b0;
            in_ready   <= 1'b0;
        end else begin
            if (out_ready || !out_valid) begin
                // the output register is free this clock
                if (skid_valid) begin
                    out_data   <= skid;
                    out_valid  <= 1'b1;
                    skid_valid <= 1'b0;
                end else begin
                    out_data  <= in_data;
                    out_valid <= take;
                end
            end else if (take) begin
                skid       <= in_data;
                skid_valid <= 1'b1;
            end
            // ready next clock unless the skid register holds (or now takes) a word
            in_ready <= !((skid_valid && !(out_ready || !out_valid))
                          || (take && !(out_ready || !out_valid)));
        end
    end
endmodule

`default_nettype wire
