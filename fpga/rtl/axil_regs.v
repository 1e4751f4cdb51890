// axil_regs: the AXI4-Lite register block of the fixed-SIMD engine
// (simd_axi): start, status, settings, stream addresses, a cycle counter.
//
// Register map (32-bit registers, byte offsets; unmapped offsets read 0 and
// ignore writes; every response is OKAY):
//   0x00 CTRL    W   bit 0 START: writing 1 starts an image (a one-clock pulse to
//                    the engine; the image then comes on the image stream). Reads 0.
//   0x04 STATUS  R   bit 0 DONE: an image finished since the last START (cleared
//                    by START; also the irq output); bit 1 BUSY; bits 2 + i: the
//                    sticky error inputs err[i] (see simd_axi), cleared by reset only
//   0x08 CFG     RW  bits 15:0 hidden width h; bit 16 activation (0 ReLU, 1 LERP-PSA)
//   0x0C WBASE   RW  byte address of the weight stream
//   0x10 WLEN    RW  its length in bytes
//   0x14 PBASE   RW  byte address of the parameter stream
//   0x18 PLEN    RW  its length in bytes
//   0x1C CYCLES  R   clocks the engine was busy on the last (or current) image:
//                    from the clock START was taken to the one its last logit left
//   0x20 INFO    R   the constant INFO (build parameters, see simd_axi)
// WSTRB is honoured byte by byte on the RW registers (CTRL: byte 0).
//
// AXI4-Lite protocol: the write address and the write data are taken
// independently (AWREADY / WREADY high while the respective register is
// empty); once both are held the write is done and BVALID raised until
// BREADY. A read address is taken while no read response waits (ARREADY =
// !RVALID); the data is registered. Every output is a register: no
// combinational path from an input port to an output port.
//
// Parameters
//   ERRW   number of sticky error inputs (STATUS bits 2 .. ERRW + 1), 1 .. 30
//   INFO   value of the INFO register
//
// Ports
//   clk, rst        clock; synchronous active-high reset (registers 0)
//   s_axil_awaddr, s_axil_awvalid, s_axil_awready   write address (6 bits)
//   s_axil_wdata, s_axil_wstrb, s_axil_wvalid, s_axil_wready   write data
//   s_axil_bresp, s_axil_bvalid, s_axil_bready       write response
//   s_axil_araddr, s_axil_arvalid, s_axil_arready   read address (6 bits)
//   s_axil_rdata, s_axil_rresp, s_axil_rvalid, s_axil_rready   read data
//   start           one-clock pulse: START was written with 1
//   cfg_h, cfg_act  CFG fields
//   wbase, wlen, pbase, plen   the stream registers
//   busy            the engine is working on an image
//   err             the engine's sticky error bits
//   irq             STATUS.DONE

`default_nettype none

module axil_regs #(
    parameter integer ERRW = 4,
    parameter [31:0]  INFO = 32'h0
) (
    input  wire            clk,
    input  wire            rst,
    input  wire [5:0]      s_axil_awaddr,
    input  wire            s_axil_awvalid,
    output wire            s_axil_awready,
    input  wire [31:0]     s_axil_wdata,
    input  wire [3:0]      s_axil_wstrb,
    input  wire            s_axil_wvalid,
    output wire            s_axil_wready,
    output wire [1:0]      s_axil_bresp,
    output reg             s_axil_bvalid,
    input  wire            s_axil_bready,
    input  wire [5:0]      s_axil_araddr,
    input  wire            s_axil_arvalid,
    output wire            s_axil_arready,
    output reg  [31:0]     s_axil_rdata,
    output wire [1:0]      s_axil_rresp,
    output reg             s_axil_rvalid,
    input  wire            s_axil_rready,
    output reg             start,
    output wire [15:0]     cfg_h,
    output wire            cfg_act,
    output reg  [31:0]     wbase,
    output reg  [31:0]     wlen,
    output reg  [31:0]     pbase,
    output reg  [31:0]     plen,
    input  wire            busy,
    input  wire [ERRW-1:0] err,
    output wire            irq
);
    localparam [3:0] A_CTRL = 4'h0, A_STATUS = 4'h1, A_CFG = 4'h2, A_WBASE = 4'h3,
                     A_WLEN = 4'h4, A_PBASE = 4'h5, A_PLEN = 4'h6, A_CYCLES = 4'h7,
                     A_INFO = 4'h8;

    // ---------------------------------------------------------------- write channel
    reg        aw_full, w_full;
    reg [3:0]  aw_reg;                     // word address
    reg [31:0] w_data;
    reg [3:0]  w_strb;
    wire       do_write = aw_full && w_full && !s_axil_bvalid;
    assign s_axil_awready = !aw_full;
    assign s_axil_wready  = !w_full;
    assign s_axil_bresp   = 2'b00;
    reg [31:0] cfg;
    reg        done, busy_q;
    reg [31:0] cycles;

    function [31:0] merge;                 // old value with the strobed bytes of w_data
        input [31:0] old;
        integer b;
        begin
            for (b = 0; b < 4; b = b + 1)
                merge[b*8 +: 8] = w_strb[b] ? w_data[b*8 +: 8] : old[b*8 +: 8];
        end
    endfunction

    always @(posedge clk) begin
        if (rst) begin
            aw_full       <= 1'b0;
            w_full        <= 1'b0;
            s_axil_bvalid <= 1'b0;
            start         <= 1'b0;
            cfg           <= 32'd0;
            wbase         <= 32'd0;
            wlen          <= 32'd0;
            pbase         <= 32'd0;
            plen          <= 32'd0;
        end else begin
            if (s_axil_awvalid && !aw_full) begin
                aw_full <= 1'b1;
                aw_reg  <= s_axil_awaddr[5:2];
            end
            if (s_axil_wvalid && !w_full) begin
                w_full <= 1'b1;
                w_data <= s_axil_wdata;
                w_strb <= s_axil_wstrb;
            end
            start <= do_write && aw_reg == A_CTRL && w_strb[0] && w_data[0];
            if (do_write) begin
                aw_full       <= 1'b0;
                w_full        <= 1'b0;
                s_axil_bvalid <= 1'b1;
                case (aw_reg)
                    A_CFG:   cfg   <= merge(cfg);
                    A_WBASE: wbase <= merge(wbase);
                    A_WLEN:  wlen  <= merge(wlen);
                    A_PBASE: pbase <= merge(pbase);
                    A_PLEN:  plen  <= merge(plen);
                    default: ;
                endcase
            end else if (s_axil_bvalid && s_axil_bready) begin
                s_axil_bvalid <= 1'b0;
            end
        end
    end
    assign cfg_h   = cfg[15:0];
    assign cfg_act = cfg[16];

    // ---------------------------------------------------------------- status, cycle counter
    always @(posedge clk) begin
        busy_q <= !rst && busy;
        if (rst) begin
            done   <= 1'b0;
            cycles <= 32'd0;
        end else begin
            if (start) done <= 1'b0;
            else if (busy_q && !busy) done <= 1'b1;
            if (start) cycles <= 32'd0;
            else if (busy) cycles <= cycles + 32'd1;
        end
    end
    assign irq = done;

    // ---------------------------------------------------------------- read channel
    wire [31:0] status = {{(30-ERRW){1'b0}}, err, busy | start, done};
    assign s_axil_arready = !s_axil_rvalid;
    assign s_axil_rresp   = 2'b00;
    always @(posedge clk) begin
        if (rst) begin
            s_axil_rvalid <= 1'b0;
        end else if (s_axil_arvalid && !s_axil_rvalid) begin
            s_axil_rvalid <= 1'b1;
            case (s_axil_araddr[5:2])
                A_STATUS: s_axil_rdata <= status;
                A_CFG:    s_axil_rdata <= cfg;
                A_WBASE:  s_axil_rdata <= wbase;
                A_WLEN:   s_axil_rdata <= wlen;
                A_PBASE:  s_axil_rdata <= pbase;
                A_PLEN:   s_axil_rdata <= plen;
                A_CYCLES: s_axil_rdata <= cycles;
                A_INFO:   s_axil_rdata <= INFO;
                default:  s_axil_rdata <= 32'd0;
            endcase
        end else if (s_axil_rready) begin
            s_axil_rvalid <= 1'b0;
        end
    end
    wire unused = &{1'b0, s_axil_awaddr[1:0], s_axil_araddr[1:0], cfg[31:17]};
endmodule

`default_nettype wire
