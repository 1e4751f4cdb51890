// credit_fifo: the output buffer of a pipelined stage, a FIFO guarded by a
// credit counter.
//
// A stage whose datapath is a fixed-latency pipeline without stalls claims
// a FIFO slot when it issues an element (claim, allowed while can_claim is
// high) and writes the element into the FIFO when it leaves the pipeline
// (in_valid) some clocks later; a slot's credit comes back when the
// consumer takes a word. So back-pressure stops the issue, never the
// pipeline, and no element is ever dropped. 2^AW must exceed the pipeline
// latency for one element per clock.
//
// Checked on every clock (simulation and the err output): a write into a
// full FIFO (in_ready low) and a claim without a credit are errors; both
// mean that the stage issued more than it reserved. err is sticky until
// reset; in simulation the first error also prints the instance name.
//
// Parameters
//   W    word width in bits, >= 1
//   AW   log2 of the depth, >= 1
//
// Ports
//   clk, rst    clock; synchronous active-high reset (FIFO empty, all credits)
//   claim       the stage issues an element this clock (one slot reserved)
//   can_claim   a slot is free to reserve
//   in_valid    the element for a reserved slot arrives this clock
//   in_data     its word
//   out_valid, out_ready, out_data   the output stream (first word falls through)
//   err         sticky: a write found the FIFO full, or a claim found no credit

`default_nettype none

module credit_fifo #(
    parameter integer W  = 8,
    parameter integer AW = 4
) (
    input  wire         clk,
    input  wire         rst,
    input  wire         claim,
    output wire         can_claim,
    input  wire         in_valid,
    input  wire [W-1:0] in_data,
    output wire         out_valid,
    input  wire         out_ready,
    output wire [W-1:0] out_data,
    output reg          err
);
    reg [AW:0] credits;
    wire       fifo_in_ready;
    wire       pop = out_valid && out_ready;
    assign can_claim = (credits != {(AW+1){1'b0}});
    wire bad = (in_valid && !fifo_in_ready) || (claim && !can_claim);

    always @(posedge clk) begin
        if (rst) begin
            credits <= 1 << AW;
            err     <= 1'b0;
        end else begin
            credits <= credits - {{AW{1'b0}}, claim} + {{AW{1'b0}}, pop};
            if (bad) err <= 1'b1;
        end
    end

`ifndef SYNTHESIS
    always @(posedge clk)
        if (!rst && bad && !err)
            $display("ERROR %m: %0s", (in_valid && !fifo_in_ready) ? "write into a full FIFO"
                                                                    : "claim without a credit");
`endif

    stream_fifo #(.W(W), .AW(AW)) fifo (
        .clk(clk), .rst(rst),
        .in_valid(in_valid), .in_ready(fifo_in_ready), .in_data(in_data),
        .out_valid(out_valid), .out_ready(out_ready), .out_data(out_data));
endmodule

`default_nettype wire
