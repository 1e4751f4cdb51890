// simd_top: a fixed-SIMD INT8 ResMLP engine (docs/METHOD.md section 10):
// one compute array of fixed width (simd_array: TW x TW int8 multipliers,
// int32 accumulators) runs the whole integer ResMLP layer after layer, one
// image at a time, with every parameter read from an external memory
// through one port of PB bytes per clock. It is the accelerator of the
// second hardware table of the paper's authors (their HLS design: 16-wide
// tiles, weights and activations buffered on chip, double-buffered weight
// tiles), written here in Verilog.
//
// Operation. On start the engine reads the image (T x P codes) and then,
// op by op, runs
//   embed             x = linear(img, embed)                       weights stationary
//   DEPTH x block     token mixing   (data stationary, below)
//                     lin1           h = act(linear(x', lin1))     weights stationary
//                     lin2           x = add8(linear(h, lin2), r)  weights stationary
//   head              logits = linear(rshift(sum_t x, log2 T), head)
// and streams the K logits out. The element-wise layers ride on the array's
// input and output paths, so they cost no extra pass: the residual affines
// (tm.res, mlp.res) are computed as x is read and kept in the residual
// buffer RB; aff1 is applied while a data tile is loaded; the LERP tables
// lut1 sit on lin1's input (TW lerp_unit lanes), relu8 or lut2 on its
// output; aff2 and the residual adds on the output; the mean pool adds up
// the last block's output as it is written.
//
// Channel Linears (embed, lin1, lin2, head): for each output tile o (TW
// outputs) and input chunk k (TW inputs), a TW x TW weight tile is
// stationary while the T token rows stream through (one row per clock):
// acc[t][o tile] += W[o tile, k chunk] . x[t, k chunk]. Token Linear of the
// token mixer, u = linear(a^T, tm.lin)^T: for each channel tile c and token
// chunk k, the data tile aff1(x[k chunk, c tile]) is stationary (loaded
// transposed from the activation buffer) while the T rows of the token
// weights W[t_out, k chunk] stream through from an on-chip copy of W (T x T
// bytes, loaded once per block): acc[t_out][c tile] += ... . Both need no
// transposed access to the activations, and the output is written back in
// place, token-row major. Every pass streams T rows; the next pass's tile is
// loaded meanwhile (stationary double buffer), so the array is busy T of
// every T clocks when the memory keeps up.
//
// Memory. Two sequential readers share the port (mem_reader): the weight
// stream (every weight tile of every channel Linear in the order the passes
// use them) has priority; the parameter stream (per op its biases, shifts,
// affines, the token weights and the LERP tables) fills the on-chip
// parameter RAMs of op j while op j - 1 runs (op j's RAMs were last used by
// op j - 3). The image comes in on its own stream (img_*), into the
// parameter RAM of the embedding. The layout is written by fpga/sim_fixed.py
// (memory_image); stream lengths and addresses are given at start. Each
// reader asks for bursts of up to BL beats (never across a 4 KB boundary),
// tagged with the reader; the port (axi_rd_master in simd_axi) takes one
// burst request at a time (mem_gnt) and returns the beats in order, each
// with its tag, after any latency (up to 2^MFAW beats in flight per reader).
//
// Timing: every multiply is registered, the dot products are balanced
// adder trees with LPS levels per pipeline stage, every requantisation is
// the 3-stage requant; the only wide paths are muxes.
//
// Parameters
//   TW     tile width (array TW x TW), a power of two, dividing C, T and HMAX
//   PB     memory port width in bytes per clock, a power of two
//   T      tokens per image, a power of two >= 2 TW
//   C      channels
//   HMAX   largest hidden width the buffers hold (cfg_h <= HMAX)
//   P      patch values per token
//   K      classes
//   DEPTH  blocks
//   LERP   1: LERP-PSA hardware (2 x TW lerp lanes and their tables); 0: ReLU only
//   M      LERP table address bits (6: 65 entries per table)
//   LPS    adder levels per pipeline stage of the dot products
//   MFAW   log2 of each reader's beat FIFO (beats in flight)
//   BAW    memory beat-address width
//   BL     largest memory burst in beats (1 .. min(256, 2^MFAW))
//
// Ports
//   clk, rst        clock; synchronous active-high reset
//   start           begin an image (when busy is low); the cfg_* are taken
//   cfg_h           hidden width of this model (a multiple of TW, <= HMAX)
//   cfg_act         0: ReLU, 1: LERP-PSA (needs LERP = 1)
//   cfg_wbase, cfg_wbeats   weight stream: first beat, beats
//   cfg_pbase, cfg_pbeats   parameter stream: first beat, beats
//   busy            an image is in progress (start to its last logit taken)
//   img_valid, img_ready, img_data, img_last   the image: T x ceil(P / TW) words of TW
//                   bytes (token rows; patch values zero padded), img_last on the last
//   mem_req, mem_addr, mem_len, mem_tag   a burst request: first beat, beats - 1, the
//                   reader (0 weights, 1 parameters); depends on registers only
//   mem_gnt         the port takes the request this clock
//   mem_rvalid, mem_rdata, mem_rtag   a beat of the granted bursts, in order (PB bytes,
//                   lowest address in bits 7:0) and the tag of its burst
//   out_valid, out_ready, out_data, out_last   the K logits of the image, then out_last
//   err             sticky: a bad configuration or a reader FIFO overflow
//   img_err         sticky: img_last was not on the image's last word

`default_nettype none

module simd_top #(
    parameter integer TW    = 16,
    parameter integer PB    = 16,
    parameter integer T     = 64,
    parameter integer C     = 96,
    parameter integer HMAX  = 192,
    parameter integer P     = 16,
    parameter integer K     = 10,
    parameter integer DEPTH = 4,
    parameter integer LERP  = 1,
    parameter integer M     = 6,
    parameter integer LPS   = 2,
    parameter integer MFAW  = 6,
    parameter integer BAW   = 20,
    parameter integer BL    = 16
) (
    input  wire              clk,
    input  wire              rst,
    input  wire              start,
    input  wire [15:0]       cfg_h,
    input  wire              cfg_act,
    input  wire [BAW-1:0]    cfg_wbase,
    input  wire [BAW-1:0]    cfg_wbeats,
    input  wire [BAW-1:0]    cfg_pbase,
    input  wire [BAW-1:0]    cfg_pbeats,
    output reg               busy,
    input  wire              img_valid,
    output wire              img_ready,
    input  wire [TW*8-1:0]   img_data,
    input  wire              img_last,
    output wire              mem_req,
    output wire [BAW-1:0]    mem_addr,
    output wire [7:0]        mem_len,
    output wire              mem_tag,
    input  wire              mem_gnt,
    input  wire              mem_rvalid,
    input  wire [PB*8-1:0]   mem_rdata,
    input  wire              mem_rtag,
    output wire              out_valid,
    input  wire              out_ready,
    output wire signed [7:0] out_data,
    output wire              out_last,
    output wire              err,
    output reg               img_err
);
    // ---------------------------------------------------------------- sizes
    localparam integer IW   = $clog2(TW);
    localparam integer NC   = C / TW;                 // channel chunks
    localparam integer NT   = T / TW;                 // token chunks
    localparam integer NPC  = (P + TW - 1) / TW;      // patch chunks
    localparam integer NKK  = (K + TW - 1) / TW;      // class chunks
    localparam integer NHM  = HMAX / TW;              // hidden chunks (buffers)
    localparam integer E    = (1 << M) + 1;           // entries per LERP table
    localparam integer RW   = $clog2(T);              // row (token) index
    localparam integer NOPS = 3 * DEPTH + 2;
    localparam integer OPW  = $clog2(NOPS + 1);
    localparam integer MAXN = (NHM > NC ? NHM : NC) > NT ? (NHM > NC ? NHM : NC) : NT;
    localparam integer CW   = $clog2((MAXN > NPC ? MAXN : NPC) + 1);   // chunk / tile index
    localparam integer XBA  = $clog2(T * NC);
    localparam integer HBA  = $clog2(T * NHM);
    localparam integer LATD = 1 + (IW + LPS - 1) / LPS;
    localparam integer LATA = LATD + 1;               // simd_array latency
    localparam integer PIPE = 7 + LATA + 3 + 4 + 1;   // issue to the destination write
    localparam integer W8   = TW * 8;

    // parameter records, in the order of the parameter stream (see rec_len)
    localparam [4:0] R_IMG = 0,  R_EB = 1,  R_ES = 2,
                     R_TRW = 3,  R_TRB = 4, R_TRS = 5, R_A1W = 6, R_A1B = 7, R_A1S = 8,
                     R_A2W = 9,  R_A2B = 10, R_A2S = 11, R_TLB = 12, R_TLS = 13, R_TWC = 14,
                     R_MRW = 15, R_MRB = 16, R_MRS = 17, R_LUT1 = 18, R_L1B = 19, R_L1S = 20,
                     R_LUT2 = 21, R_L2B = 22, R_L2S = 23, R_HB = 24, R_HS = 25;
    localparam integer NREC = 26;
    // op types
    localparam [2:0] OT_EMB = 3'd0, OT_TM = 3'd1, OT_L1 = 3'd2, OT_L2 = 3'd3, OT_HEAD = 3'd4;

    // largest word count of a record (RAM depth)
    function integer rec_depth;
        input [4:0] id;
        begin
            case (id)
                R_IMG:                     rec_depth = T * NPC;
                R_TLB, R_TLS:              rec_depth = NT;
                R_TWC:                     rec_depth = T * NT;
                R_L1B, R_L1S:              rec_depth = NHM;
                R_HB, R_HS:                rec_depth = NKK;
                R_LUT1:                    rec_depth = NC * E;
                R_LUT2:                    rec_depth = NHM * E;
                default:                   rec_depth = NC;
            endcase
        end
    endfunction
    localparam integer RDMAX = (T * NPC > T * NT ? T * NPC : T * NT) > NHM * E
                             ? (T * NPC > T * NT ? T * NPC : T * NT) : NHM * E;
    localparam integer RA = $clog2((RDMAX > NC * E ? RDMAX : NC * E) + 1);

`ifndef SYNTHESIS
    initial begin
        if ((1 << IW) != TW || TW < 2 || C % TW != 0 || T % (2 * TW) != 0 || HMAX % TW != 0
            || (1 << RW) != T || PB < 1 || (PB & (PB - 1)) != 0) begin
            $display("simd_top: need TW a power of two dividing C and HMAX, T a power of two %0s",
                     ">= 2 TW, PB a power of two");
            $finish;
        end
    end
`endif

    // ---------------------------------------------------------------- configuration
    reg [15:0]  h_r;
    reg         act_r;
    reg [CW-1:0] nh;                                  // hidden chunks of this model
    reg         cfg_err;
    always @(posedge clk) begin
        if (rst) begin
            cfg_err <= 1'b0;
        end else if (start && !busy) begin
            h_r   <= cfg_h;
            act_r <= cfg_act;
            nh    <= cfg_h[IW +: CW];
            if (cfg_h[IW-1:0] != {IW{1'b0}} || cfg_h > HMAX[15:0] || cfg_h == 16'd0
                || (cfg_act && LERP == 0))
                cfg_err <= 1'b1;
        end
    end
    wire unused_h = &{1'b0, h_r};
    wire go = start && !busy;

    // ---------------------------------------------------------------- memory port
    // one burst request at a time; the weight reader first
    wire          w_req, p_req, w_gnt, p_gnt, w_err, p_err;
    wire [BAW-1:0] w_addr, p_addr;
    wire [7:0]    w_len, p_len;
    assign w_gnt    = w_req && mem_gnt;
    assign p_gnt    = p_req && !w_req && mem_gnt;
    assign mem_req  = w_req || p_req;
    assign mem_addr = w_req ? w_addr : p_addr;
    assign mem_len  = w_req ? w_len : p_len;
    assign mem_tag  = !w_req;

    wire          wv, mv, w_rdy, m_rdy;
    wire [W8-1:0] wword, mword;
    mem_reader #(.PB(PB), .TW(TW), .BAW(BAW), .FAW(MFAW), .BL(BL)) wreader (
        .clk(clk), .rst(rst), .start(go), .base(cfg_wbase), .beats(cfg_wbeats),
        .req(w_req), .addr(w_addr), .len(w_len), .gnt(w_gnt),
        .resp_valid(mem_rvalid && !mem_rtag), .resp_data(mem_rdata),
        .out_valid(wv), .out_ready(w_rdy), .out_data(wword), .err(w_err));
    mem_reader #(.PB(PB), .TW(TW), .BAW(BAW), .FAW(MFAW), .BL(BL)) preader (
        .clk(clk), .rst(rst), .start(go), .base(cfg_pbase), .beats(cfg_pbeats),
        .req(p_req), .addr(p_addr), .len(p_len), .gnt(p_gnt),
        .resp_valid(mem_rvalid && mem_rtag), .resp_data(mem_rdata),
        .out_valid(mv), .out_ready(m_rdy), .out_data(mword), .err(p_err));

    // ---------------------------------------------------------------- op sequence
    // op j: 0 embed, 1 + 3b tm, 2 + 3b lin1, 3 + 3b lin2 of block b, NOPS - 1 head
    function [2:0] op_type;
        input [OPW-1:0] j;
        begin
            if (j == {OPW{1'b0}}) op_type = OT_EMB;
            else if (j == NOPS[OPW-1:0] - 1'b1) op_type = OT_HEAD;
            else case ((j - 1'b1) % 3)
                0:       op_type = OT_TM;
                1:       op_type = OT_L1;
                default: op_type = OT_L2;
            endcase
        end
    endfunction

    // ---------------------------------------------------------------- parameter loader
    // record lengths of this model, in words (records of group type: see the ranges below)
    localparam integer L_IMG = T * NPC, L_TWC = T * NT, L_LUT1 = NC * E;
    function [RA-1:0] rec_len;
        input [4:0] id;
        begin
            case (id)
                R_IMG:        rec_len = L_IMG[RA-1:0];
                R_TLB, R_TLS: rec_len = NT[RA-1:0];
                R_TWC:        rec_len = L_TWC[RA-1:0];
                R_L1B, R_L1S: rec_len = {{(RA-CW){1'b0}}, nh};
                R_HB, R_HS:   rec_len = NKK[RA-1:0];
                R_LUT1:       rec_len = act_r ? L_LUT1[RA-1:0] : {RA{1'b0}};
                R_LUT2:       rec_len = act_r ? {{(RA-CW){1'b0}}, nh} * E[RA-1:0] : {RA{1'b0}};
                default:      rec_len = NC[RA-1:0];
            endcase
        end
    endfunction
    function [4:0] first_rec;
        input [2:0] ot;
        case (ot)
            OT_EMB:  first_rec = R_IMG;
            OT_TM:   first_rec = R_TRW;
            OT_L1:   first_rec = R_MRW;
            OT_L2:   first_rec = R_L2B;
            default: first_rec = R_HB;
        endcase
    endfunction
    function [4:0] last_rec;
        input [2:0] ot;
        case (ot)
            OT_EMB:  last_rec = R_ES;
            OT_TM:   last_rec = R_TWC;
            OT_L1:   last_rec = R_LUT2;
            OT_L2:   last_rec = R_L2S;
            default: last_rec = R_HS;
        endcase
    endfunction

    reg [OPW-1:0] lg;          // group being loaded (= its op index)
    reg [OPW-1:0] loaded;      // groups fully loaded
    reg [4:0]     rec;
    reg [RA-1:0]  rw;          // word within the record
    reg           lbusy;
    reg [OPW-1:0] started;     // ops started
    wire [2:0]    lt      = op_type(lg);
    wire [RA-1:0] rlen    = rec_len(rec);
    wire          lgate   = lbusy && (lg == {OPW{1'b0}} || lg <= started);
    wire          rec_end = (rlen == {RA{1'b0}}) || (rw == rlen - 1'b1);
    // the image record comes from the image stream, every other one from the parameter reader
    wire          img_rec = (rec == R_IMG);
    wire          pv      = img_rec ? img_valid : mv;
    wire [W8-1:0] pword   = img_rec ? img_data : mword;
    wire          lpop    = lgate && (rlen != {RA{1'b0}}) && pv;
    wire          ladv    = lgate && ((rlen == {RA{1'b0}}) || lpop) && rec_end;
    assign m_rdy     = lgate && (rlen != {RA{1'b0}}) && !img_rec;
    assign img_ready = lgate && (rlen != {RA{1'b0}}) && img_rec;
    always @(posedge clk) begin
        if (rst) img_err <= 1'b0;
        else if (lpop && img_rec && (img_last != rec_end)) img_err <= 1'b1;
    end
    always @(posedge clk) begin
        if (rst || go) begin
            lg     <= {OPW{1'b0}};
            loaded <= {OPW{1'b0}};
            rec    <= R_IMG;
            rw     <= {RA{1'b0}};
            lbusy  <= go;
        end else begin
            if (lpop && !rec_end) rw <= rw + 1'b1;
            if (ladv) begin
                rw <= {RA{1'b0}};
                if (rec == last_rec(lt)) begin
                    loaded <= loaded + 1'b1;
                    lg     <= lg + 1'b1;
                    rec    <= first_rec(op_type(lg + 1'b1));
                    if (lg == NOPS[OPW-1:0] - 1'b1) lbusy <= 1'b0;
                end else begin
                    rec <= rec + 1'b1;
                end
            end
        end
    end

    // ---------------------------------------------------------------- op control
    localparam [1:0] S_WAIT = 2'd0, S_RUN = 2'd1, S_DRAIN = 2'd2, S_OUT = 2'd3;
    reg [1:0]     st;
    reg [OPW-1:0] op;
    reg [2:0]     ot;
    reg [5:0]     drain;
    wire          issue_done;                          // the streamer issued every pass
    wire          out_done;                            // the last logit was taken
    always @(posedge clk) begin
        if (rst) begin
            busy    <= 1'b0;
            st      <= S_WAIT;
            op      <= {OPW{1'b0}};
            ot      <= OT_EMB;
            started <= {OPW{1'b0}};
        end else if (go) begin
            busy    <= 1'b1;
            st      <= S_WAIT;
            op      <= {OPW{1'b0}};
            ot      <= OT_EMB;
            started <= {OPW{1'b0}};
        end else if (busy) begin
            case (st)
                S_WAIT: if (loaded > op) begin
                    st      <= S_RUN;
                    started <= op + 1'b1;
                end
                S_RUN: if (issue_done) begin
                    st    <= S_DRAIN;
                    drain <= PIPE[5:0] + 6'd2;
                end
                S_DRAIN: if (drain == 6'd0) begin
                    if (op == NOPS[OPW-1:0] - 1'b1) st <= S_OUT;
                    else begin
                        st <= S_WAIT;
                        op <= op + 1'b1;
                        ot <= op_type(op + 1'b1);
                    end
                end else drain <= drain - 1'b1;
                default: if (out_done) begin
                    busy <= 1'b0;
                    st   <= S_WAIT;
                end
            endcase
        end
    end
    wire run_go = busy && st == S_WAIT && loaded > op;     // op starts this clock
    wire is_ds  = (ot == OT_TM);
    localparam integer LASTL2 = NOPS - 2;                 // the last block's lin2
    wire last_block = (op == LASTL2[OPW-1:0]);

    // passes of this op: NO outer tiles x NK inner chunks, R rows each
    reg [CW-1:0] n_o, n_k;
    always @* begin
        case (ot)
            OT_EMB:  begin n_o = NC[CW-1:0];  n_k = NPC[CW-1:0]; end
            OT_TM:   begin n_o = NC[CW-1:0];  n_k = NT[CW-1:0];  end
            OT_L1:   begin n_o = nh;          n_k = NC[CW-1:0];  end
            OT_L2:   begin n_o = NC[CW-1:0];  n_k = nh;          end
            default: begin n_o = NKK[CW-1:0]; n_k = NC[CW-1:0];  end
        endcase
    end
    wire one_row = (ot == OT_HEAD);                        // R = 1 (the pooled vector)

    // ---------------------------------------------------------------- stationary loader
    localparam [1:0] SH_EMPTY = 2'd0, SH_LOAD = 2'd1, SH_FULL = 2'd2, SH_CLAIMED = 2'd3;
    reg [1:0]    sh;
    reg [CW-1:0] lo, lk;          // pass being loaded
    reg [IW:0]   li;              // words requested / popped
    reg          lall;            // every pass of the op loaded
    wire         ld_valid, ld_tr;
    wire [IW-1:0] ld_i;
    wire [W8-1:0] ld_word;
    wire         swap;
    wire         ws_pop = (st == S_RUN) && sh == SH_LOAD && !is_ds && li != TW[IW:0] && wv;
    assign w_rdy = (st == S_RUN) && sh == SH_LOAD && !is_ds && li != TW[IW:0];
    wire         ds_rd  = (st == S_RUN) && sh == SH_LOAD && is_ds && li != TW[IW:0];
    wire         ds_in;                                    // a transposed word arrives
    wire [IW-1:0] ds_i;
    wire [W8-1:0] ds_word;
    wire         ld_last = ld_valid && (ld_i == TW[IW-1:0] - 1'b1);
    always @(posedge clk) begin
        if (rst || run_go) begin
            sh   <= SH_EMPTY;
            lo   <= {CW{1'b0}};
            lk   <= {CW{1'b0}};
            li   <= {(IW+1){1'b0}};
            lall <= 1'b0;
        end else begin
            if (sh == SH_EMPTY && !lall && st == S_RUN) begin
                sh <= SH_LOAD;
                li <= {(IW+1){1'b0}};
            end
            if (ws_pop || ds_rd) li <= li + 1'b1;
            if (ld_last) begin
                sh <= SH_FULL;
                if (lk == n_k - 1'b1) begin
                    lk <= {CW{1'b0}};
                    lo <= lo + 1'b1;
                    if (lo == n_o - 1'b1) lall <= 1'b1;
                end else lk <= lk + 1'b1;
            end
            if (sh == SH_FULL && claim) sh <= SH_CLAIMED;
            if (sh == SH_CLAIMED && swap) sh <= SH_EMPTY;
        end
    end
    assign ld_valid = ws_pop || ds_in;
    assign ld_tr    = ds_in;
    assign ld_i     = ds_in ? ds_i : li[IW-1:0];
    assign ld_word  = ds_in ? ds_word : wword;

    // ---------------------------------------------------------------- streamer
    reg [CW-1:0] so, sk;
    reg [RW-1:0] sr;
    reg [1:0]    pad;
    reg          srows, sall;
    wire         row_end   = one_row ? 1'b1 : (sr == T[RW-1:0] - 1'b1);
    wire         sissue    = srows && (pad == 2'd0);
    wire         pass_last = (sk == n_k - 1'b1) && (so == n_o - 1'b1);
    // a pass ends with its last row (R = T) or after 3 more clocks (R = 1: a row may
    // come back to the accumulators after 4 clocks); the next may start in the same clock
    wire         pass_done = srows && (one_row ? (pad == 2'd1) : (pad == 2'd0 && row_end));
    wire         claim     = (st == S_RUN) && !sall && sh == SH_FULL
                             && (!srows || (pass_done && !pass_last));
    always @(posedge clk) begin
        if (rst || run_go) begin
            so    <= {CW{1'b0}};
            sk    <= {CW{1'b0}};
            sr    <= {RW{1'b0}};
            pad   <= 2'd0;
            srows <= 1'b0;
            sall  <= 1'b0;
        end else begin
            if (sissue && !row_end) sr <= sr + 1'b1;
            if (sissue && row_end && one_row) pad <= 2'd3;
            if (pad != 2'd0) pad <= pad - 1'b1;
            if (pass_done) begin
                srows <= 1'b0;
                if (pass_last) sall <= 1'b1;
                if (sk == n_k - 1'b1) begin
                    sk <= {CW{1'b0}};
                    so <= so + 1'b1;
                end else sk <= sk + 1'b1;
            end
            if (claim) begin
                srows <= 1'b1;
                sr    <= {RW{1'b0}};
            end
        end
    end
    assign issue_done = sall && (st == S_RUN);
    wire s_first = (sk == {CW{1'b0}});
    wire s_lastk = (sk == n_k - 1'b1);
    wire s_pfirst = (sr == {RW{1'b0}});

    // ---------------------------------------------------------------- parameter RAMs
    reg  [NREC*RA-1:0] rec_raddr;
    wire [NREC*W8-1:0] rec_rdata;
    // vector source addresses (issue clock)
    wire [RA-1:0] a_img = sr * NPC[RA-1:0] + {{(RA-CW){1'b0}}, sk};
    wire [RA-1:0] a_twc = sr * NT[RA-1:0] + {{(RA-CW){1'b0}}, sk};
    // residual-affine chunk (with the activation read), aff1 chunk, b/s and aff2 addresses
    reg  [CW-1:0] xb_chunk;
    wire [RA-1:0] a_bs, a_a2;
    genvar g;
    generate
        for (g = 0; g < NREC; g = g + 1) begin : recram
            if (g != R_LUT1 && g != R_LUT2) begin : g_ram
                localparam integer D  = rec_depth(g[4:0]);
                localparam integer DA = (D > 1) ? $clog2(D) : 1;
                word_ram #(.W(W8), .DEPTH(D), .AW(DA)) ram (
                    .clk(clk), .we(lpop && rec == g[4:0]), .waddr(rw[DA-1:0]), .wdata(pword),
                    .raddr(rec_raddr[g*RA +: DA]), .rdata(rec_rdata[g*W8 +: W8]));
                if (DA < RA) begin : g_hi
                    wire unused_a = &{1'b0, rec_raddr[g*RA+DA +: RA-DA]};
                end
            end else begin : g_tab
                assign rec_rdata[g*W8 +: W8] = {W8{1'b0}};
                wire unused_a = &{1'b0, rec_raddr[g*RA +: RA], rec_rdata[g*W8 +: W8]};
            end
        end
    endgenerate
    always @* begin
        rec_raddr = {(NREC*RA){1'b0}};
        rec_raddr[R_IMG*RA +: RA] = a_img;
        rec_raddr[R_TWC*RA +: RA] = a_twc;
        rec_raddr[R_EB*RA +: RA]  = a_bs;  rec_raddr[R_ES*RA +: RA]  = a_bs;
        rec_raddr[R_TLB*RA +: RA] = a_bs;  rec_raddr[R_TLS*RA +: RA] = a_bs;
        rec_raddr[R_L1B*RA +: RA] = a_bs;  rec_raddr[R_L1S*RA +: RA] = a_bs;
        rec_raddr[R_L2B*RA +: RA] = a_bs;  rec_raddr[R_L2S*RA +: RA] = a_bs;
        rec_raddr[R_HB*RA +: RA]  = a_bs;  rec_raddr[R_HS*RA +: RA]  = a_bs;
        rec_raddr[R_TRW*RA +: RA] = {{(RA-CW){1'b0}}, xb_chunk};
        rec_raddr[R_TRB*RA +: RA] = {{(RA-CW){1'b0}}, xb_chunk};
        rec_raddr[R_TRS*RA +: RA] = {{(RA-CW){1'b0}}, xb_chunk};
        rec_raddr[R_MRW*RA +: RA] = {{(RA-CW){1'b0}}, xb_chunk};
        rec_raddr[R_MRB*RA +: RA] = {{(RA-CW){1'b0}}, xb_chunk};
        rec_raddr[R_MRS*RA +: RA] = {{(RA-CW){1'b0}}, xb_chunk};
        rec_raddr[R_A1W*RA +: RA] = {{(RA-CW){1'b0}}, lo};
        rec_raddr[R_A1B*RA +: RA] = {{(RA-CW){1'b0}}, lo};
        rec_raddr[R_A1S*RA +: RA] = {{(RA-CW){1'b0}}, lo};
        rec_raddr[R_A2W*RA +: RA] = a_a2;  rec_raddr[R_A2B*RA +: RA] = a_a2;
        rec_raddr[R_A2S*RA +: RA] = a_a2;
    end
    wire [W8-1:0] rdw [0:NREC-1];     // the read data of each record's RAM
    generate
        for (g = 0; g < NREC; g = g + 1) begin : recrd
            assign rdw[g] = rec_rdata[g*W8 +: W8];
        end
    endgenerate

    // ---------------------------------------------------------------- activation buffers
    // XB: x, token rows of NC words; RB: the residual branch, same layout;
    // HB: the hidden activations (NHM words per row); PVB: the pooled vector.
    reg  [XBA-1:0] xb_raddr;
    wire [W8-1:0]  xb_rdata, rb_rdata, hb_rdata, pv_rdata;
    wire           xb_we, hb_we, rb_we, pv_we;
    wire [XBA-1:0] xb_waddr, rb_waddr, rb_raddr;
    wire [HBA-1:0] hb_waddr;
    wire [CW-1:0]  pv_waddr;
    wire [W8-1:0]  y_word, rb_wdata, pv_wdata;
    word_ram #(.W(W8), .DEPTH(T * NC), .AW(XBA)) xbuf (
        .clk(clk), .we(xb_we), .waddr(xb_waddr), .wdata(y_word), .raddr(xb_raddr), .rdata(xb_rdata));
    word_ram #(.W(W8), .DEPTH(T * NC), .AW(XBA)) rbuf (
        .clk(clk), .we(rb_we), .waddr(rb_waddr), .wdata(rb_wdata), .raddr(rb_raddr), .rdata(rb_rdata));
    word_ram #(.W(W8), .DEPTH(T * NHM), .AW(HBA)) hbuf (
        .clk(clk), .we(hb_we), .waddr(hb_waddr), .wdata(y_word),
        .raddr(sr * NHM[HBA-1:0] + {{(HBA-CW){1'b0}}, sk}), .rdata(hb_rdata));
    localparam integer PVA = (NC > 1) ? $clog2(NC) : 1;
    word_ram #(.W(W8), .DEPTH(NC), .AW(PVA)) pvbuf (
        .clk(clk), .we(pv_we), .waddr(pv_waddr[PVA-1:0]), .wdata(pv_wdata), .raddr(sk[PVA-1:0]),
        .rdata(pv_rdata));
    wire unused_pva = &{1'b0, pv_waddr};

    // the activation read port: the stream of lin1, or the transposed tile loads of the token mixer
    wire [RW-1:0] ds_row = lk[RW-IW-1:0] * TW[RW-1:0] + {{(RW-IW){1'b0}}, li[IW-1:0]};
    always @* begin
        if (is_ds) begin
            xb_raddr = ds_row * NC[XBA-1:0] + {{(XBA-CW){1'b0}}, lo};
            xb_chunk = lo;
        end else begin
            xb_raddr = sr * NC[XBA-1:0] + {{(XBA-CW){1'b0}}, sk};
            xb_chunk = sk;
        end
    end
    wire xb_rd = is_ds ? ds_rd : (sissue && ot == OT_L1);

    // ---------------------------------------------------------------- residual and aff1 lanes
    // on the activation read: r = affine(x, res) into RB (token mixer and lin1);
    // aff1(x) into the stationary tile (token mixer)
    reg [XBA-1:0] xr1;
    reg           xv1, xds1;
    reg [IW-1:0]  xi1;
    always @(posedge clk) begin
        xr1  <= xb_raddr;
        xi1  <= li[IW-1:0];
        xds1 <= is_ds;
        xv1  <= rst ? 1'b0 : xb_rd;
    end
    wire [W8-1:0] res_w = is_ds ? rdw[R_TRW] : rdw[R_MRW];
    wire [W8-1:0] res_b = is_ds ? rdw[R_TRB] : rdw[R_MRB];
    wire [W8-1:0] res_s = is_ds ? rdw[R_TRS] : rdw[R_MRS];
    wire [W8-1:0] a1_w = rdw[R_A1W], a1_b = rdw[R_A1B], a1_s = rdw[R_A1S];
    wire [W8-1:0] a2_w = rdw[R_A2W], a2_b = rdw[R_A2B], a2_s = rdw[R_A2S];
    wire [TW-1:0] rv_l, av_l;
    wire [XBA+IW:0] r_side;
    generate
        for (g = 0; g < TW; g = g + 1) begin : xlane
            wire [XBA+IW:0] s_out;
            affine_unit #(.SW(XBA + IW + 1)) res (
                .clk(clk), .rst(rst), .in_valid(xv1), .in_x(xb_rdata[g*8 +: 8]),
                .in_w(res_w[g*8 +: 8]), .in_b(res_b[g*8 +: 8]), .in_s(res_s[g*8 +: 5]),
                .in_side({xr1, xi1, xds1}), .out_valid(rv_l[g]), .out_y(rb_wdata[g*8 +: 8]),
                .out_side(s_out));
            wire unused_a;
            affine_unit #(.SW(1)) aff1 (
                .clk(clk), .rst(rst), .in_valid(xv1 && xds1), .in_x(xb_rdata[g*8 +: 8]),
                .in_w(a1_w[g*8 +: 8]), .in_b(a1_b[g*8 +: 8]), .in_s(a1_s[g*8 +: 5]),
                .in_side(1'b0), .out_valid(av_l[g]), .out_y(ds_word[g*8 +: 8]), .out_side(unused_a));
            if (g == 0) begin : g_side
                assign r_side = s_out;
            end else begin : g_noside
                wire unused_s = &{1'b0, s_out, unused_a};
            end
            wire unused_hi = &{1'b0, res_s[g*8+5 +: 3], a1_s[g*8+5 +: 3], a2_s[g*8+5 +: 3]};
            if (g == 0) begin : g_u0
                wire unused_a0 = &{1'b0, unused_a};
            end
        end
    endgenerate
    wire unused_l = &{1'b0, rv_l[TW-1:1], av_l[TW-1:1]};
    assign rb_we    = rv_l[0];
    assign rb_waddr = r_side[XBA+IW -: XBA];
    assign ds_in    = av_l[0];
    assign ds_i     = r_side[IW:1];
    wire unused_rs  = &{1'b0, r_side[0]};

    // ---------------------------------------------------------------- vector path
    localparam integer SIDE = RW + CW + CW + 3;           // row, o, k, first, last k, pass first
    reg [SIDE-1:0] p1;
    reg            v1;
    always @(posedge clk) begin
        p1 <= {sr, so, sk, s_first, s_lastk, s_pfirst};
        v1 <= rst ? 1'b0 : sissue;
    end
    reg [W8-1:0]   vsel;
    reg [SIDE-1:0] p2;
    reg            v2;
    always @(posedge clk) begin
        case (ot)
            OT_EMB:  vsel <= rdw[R_IMG];
            OT_TM:   vsel <= rdw[R_TWC];
            OT_L1:   vsel <= xb_rdata;
            OT_L2:   vsel <= hb_rdata;
            default: vsel <= pv_rdata;
        endcase
        p2 <= p1;
        v2 <= rst ? 1'b0 : v1;
    end
    // lut1 on lin1's input (LERP-PSA): lane i, channel k * TW + i, table k of the lane's RAM
    wire [W8-1:0]  v6_plain, v6_lerp;
    wire [SIDE-1:0] p6;
    wire            v6;
    pipe_delay #(.W(W8), .D(4), .RST(0)) dvec (.clk(clk), .rst(rst), .d(vsel), .q(v6_plain));
    pipe_delay #(.W(SIDE), .D(4), .RST(0)) dside (.clk(clk), .rst(rst), .d(p2), .q(p6));
    pipe_delay #(.W(1), .D(4), .RST(1)) dvalid (.clk(clk), .rst(rst), .d(v2), .q(v6));
    wire [CW-1:0] k2 = p2[CW+2 -: CW];
    wire use_lut1 = act_r && (ot == OT_L1);
    generate
        if (LERP != 0) begin : g_lut1
            lerp_ram_lanes #(.TW(TW), .M(M), .TABLES(NC), .CW(CW), .RA(RA)) lanes (
                .clk(clk), .rst(rst), .we(lpop && rec == R_LUT1), .waddr(rw), .wdata(pword),
                .in_valid(v2 && use_lut1), .in_x(vsel), .in_table(k2), .out_y(v6_lerp));
        end else begin : g_no_lut1
            assign v6_lerp = v6_plain;
            wire unused_k2 = &{1'b0, k2, use_lut1};
        end
    endgenerate
    reg [W8-1:0]   vec;
    reg [SIDE-1:0] p7;
    reg            v7;
    always @(posedge clk) begin
        vec <= use_lut1 ? v6_lerp : v6_plain;
        p7  <= p6;
        v7  <= rst ? 1'b0 : v6;
    end
    assign swap = v6 && p6[0];               // the pass's first row enters the array next clock

    // ---------------------------------------------------------------- the array
    wire              av;
    wire [TW*32-1:0]  acc;
    wire [RW-1:0]     arow;
    wire [CW-1:0]     ao;
    simd_array #(.TW(TW), .ROWS(T), .LPS(LPS), .SW(CW)) array (
        .clk(clk), .rst(rst),
        .ld_valid(ld_valid), .ld_i(ld_i), .ld_tr(ld_tr), .ld_word(ld_word), .swap(swap),
        .in_valid(v7), .in_vec(vec), .in_row(p7[SIDE-1 -: RW]), .in_first(p7[2]), .in_last(p7[1]),
        .in_side(p7[SIDE-RW-1 -: CW]),
        .out_valid(av), .out_acc(acc), .out_row(arow), .out_side(ao));
    wire unused_p7 = &{1'b0, p7[CW+2 -: CW], p7[0]};

    // bias and shift: read one clock before the accumulator is final
    wire [RW-1:0] brow;
    wire [CW-1:0] bo;
    pipe_delay #(.W(RW + CW), .D(LATA - 1), .RST(0)) dbs (
        .clk(clk), .rst(rst), .d({p7[SIDE-1 -: RW], p7[SIDE-RW-1 -: CW]}), .q({brow, bo}));
    assign a_bs = is_ds ? {{(RA-RW+IW){1'b0}}, brow[RW-1:IW]} : {{(RA-CW){1'b0}}, bo};
    wire unused_brow = &{1'b0, brow[IW-1:0]};
    reg [W8-1:0] bw, sw;
    always @* begin
        case (ot)
            OT_EMB:  begin bw = rdw[R_EB];  sw = rdw[R_ES];  end
            OT_TM:   begin bw = rdw[R_TLB]; sw = rdw[R_TLS]; end
            OT_L1:   begin bw = rdw[R_L1B]; sw = rdw[R_L1S]; end
            OT_L2:   begin bw = rdw[R_L2B]; sw = rdw[R_L2S]; end
            default: begin bw = rdw[R_HB];  sw = rdw[R_HS];  end
        endcase
    end
    wire [7:0] b_row = bw[arow[IW-1:0]*8 +: 8];           // token Linear: one bias per row
    wire [7:0] s_row = sw[arow[IW-1:0]*8 +: 8];

    // requantise every lane
    wire [TW-1:0]     qv_l;
    wire [W8-1:0]     q;
    wire [RW+CW-1:0]  qside;
    generate
        for (g = 0; g < TW; g = g + 1) begin : qlane
            wire [RW+CW-1:0] s_out;
            requant #(.AW(32), .RELU(0), .SW(RW + CW)) rq (
                .clk(clk), .rst(rst), .in_valid(av), .in_acc(acc[g*32 +: 32]),
                .in_s(is_ds ? s_row[4:0] : sw[g*8 +: 5]), .in_b(is_ds ? b_row : bw[g*8 +: 8]),
                .in_side({arow, ao}), .out_valid(qv_l[g]), .out_y(q[g*8 +: 8]), .out_side(s_out));
            if (g == 0) begin : g_side
                assign qside = s_out;
            end else begin : g_noside
                wire unused_s = &{1'b0, s_out};
            end
            wire unused_hi = &{1'b0, sw[g*8+5 +: 3], s_row[7:5]};
        end
    endgenerate
    wire qv = qv_l[0];
    wire unused_q = &{1'b0, qv_l[TW-1:1]};

    // ---------------------------------------------------------------- output path
    // aff2 (token mixer), relu8 or lut2 (lin1), or nothing; 4 clocks in every case
    wire [CW-1:0] q_early;                                 // the tile one clock before q
    pipe_delay #(.W(CW), .D(2), .RST(0)) dq (.clk(clk), .rst(rst), .d(ao), .q(q_early));
    assign a_a2 = {{(RA-CW){1'b0}}, q_early};
    wire [CW-1:0] qo = qside[CW-1:0];
    wire [W8-1:0] q_relu;
    wire [W8-1:0] o_plain, o_aff2, o_lerp;
    generate
        for (g = 0; g < TW; g = g + 1) begin : olane
            assign q_relu[g*8 +: 8] = q[g*8+7] ? 8'd0 : q[g*8 +: 8];
            wire ov, unused_os;
            affine_unit #(.SW(1)) aff2 (
                .clk(clk), .rst(rst), .in_valid(qv), .in_x(q[g*8 +: 8]),
                .in_w(a2_w[g*8 +: 8]), .in_b(a2_b[g*8 +: 8]), .in_s(a2_s[g*8 +: 5]),
                .in_side(1'b0), .out_valid(ov), .out_y(o_aff2[g*8 +: 8]), .out_side(unused_os));
            wire unused_o = &{1'b0, ov, unused_os};
        end
    endgenerate
    wire relu_now = (ot == OT_L1) && !act_r;
    pipe_delay #(.W(W8), .D(4), .RST(0)) dplain (.clk(clk), .rst(rst), .d(relu_now ? q_relu : q),
                                                  .q(o_plain));
    wire use_lut2 = act_r && (ot == OT_L1);
    generate
        if (LERP != 0) begin : g_lut2
            lerp_ram_lanes #(.TW(TW), .M(M), .TABLES(NHM), .CW(CW), .RA(RA)) lanes (
                .clk(clk), .rst(rst), .we(lpop && rec == R_LUT2), .waddr(rw), .wdata(pword),
                .in_valid(qv && use_lut2), .in_x(q), .in_table(qo), .out_y(o_lerp));
        end else begin : g_no_lut2
            assign o_lerp = o_plain;
            wire unused_l2 = &{1'b0, use_lut2, qo};
        end
    endgenerate
    wire [RW+CW-1:0] oside, o_early;
    wire             ov4;
    pipe_delay #(.W(RW + CW), .D(4), .RST(0)) doside (.clk(clk), .rst(rst), .d(qside), .q(oside));
    pipe_delay #(.W(RW + CW), .D(3), .RST(0)) doearly (.clk(clk), .rst(rst), .d(qside), .q(o_early));
    pipe_delay #(.W(1), .D(4), .RST(1)) dov (.clk(clk), .rst(rst), .d(qv), .q(ov4));
    wire [RW-1:0] orow = oside[RW+CW-1 -: RW];
    wire [CW-1:0] oo   = oside[CW-1:0];
    // the residual of the same element, read one clock ahead
    assign rb_raddr = o_early[RW+CW-1 -: RW] * NC[XBA-1:0] + {{(XBA-CW){1'b0}}, o_early[CW-1:0]};
    wire add_res = (ot == OT_TM) || (ot == OT_L2);
    wire [W8-1:0] o_sel = (ot == OT_TM) ? o_aff2 : use_lut2 ? o_lerp : o_plain;
    reg  [W8-1:0] y5;
    reg  [RW-1:0] row5;
    reg  [CW-1:0] o5;
    reg           v5;
    integer n;
    always @(posedge clk) begin
        for (n = 0; n < TW; n = n + 1)
            y5[n*8 +: 8] <= add_res ? add8(o_sel[n*8 +: 8], rb_rdata[n*8 +: 8]) : o_sel[n*8 +: 8];
        row5 <= orow;
        o5   <= oo;
        v5   <= rst ? 1'b0 : ov4;
    end
    function [7:0] add8;
        input [7:0] a, b;
        reg signed [8:0] s;
        begin
            s = $signed({a[7], a}) + $signed({b[7], b});
            add8 = (s > 9'sd127) ? 8'h7f : (s < -9'sd128) ? 8'h80 : s[7:0];
        end
    endfunction
    assign y_word   = y5;
    assign xb_we    = v5 && (ot == OT_EMB || ot == OT_TM || ot == OT_L2);
    assign xb_waddr = row5 * NC[XBA-1:0] + {{(XBA-CW){1'b0}}, o5};
    assign hb_we    = v5 && (ot == OT_L1);
    assign hb_waddr = row5 * NHM[HBA-1:0] + {{(HBA-CW){1'b0}}, o5};

    // mean pool over the last block's output, tile by tile (rows 0 .. T-1 in order)
    localparam integer PSW = 8 + RW;
    reg [TW*PSW-1:0] pacc;
    wire [TW*PSW-1:0] psum;
    generate
        for (g = 0; g < TW; g = g + 1) begin : pool
            assign psum[g*PSW +: PSW] = (row5 == {RW{1'b0}} ? {PSW{1'b0}} : pacc[g*PSW +: PSW])
                                        + {{RW{y5[g*8+7]}}, y5[g*8 +: 8]};
            wire [PSW:0] rnd = ({psum[g*PSW+PSW-1], psum[g*PSW +: PSW]}
                                + ({{PSW{1'b0}}, 1'b1} << (RW - 1))) >> RW;
            assign pv_wdata[g*8 +: 8] = rnd[7:0];
            wire unused_r = &{1'b0, rnd[PSW:8]};
        end
    endgenerate
    wire pool_on = v5 && (ot == OT_L2) && last_block;
    always @(posedge clk) if (pool_on) pacc <= psum;
    assign pv_we    = pool_on && (row5 == T[RW-1:0] - 1'b1);
    assign pv_waddr = o5;

    // logits: the head's output tiles, then streamed out one per clock
    reg [NKK*W8-1:0] logits;
    always @(posedge clk) if (v5 && ot == OT_HEAD) logits[o5*W8 +: W8] <= y5;
    localparam integer KW = $clog2(K + 1);
    reg [KW-1:0] kout;
    always @(posedge clk) begin
        if (rst || go) kout <= {KW{1'b0}};
        else if (out_valid && out_ready) kout <= kout + 1'b1;
    end
    assign out_valid = busy && (st == S_OUT);
    assign out_data  = logits[kout*8 +: 8];
    assign out_last  = (kout == K[KW-1:0] - 1'b1);
    assign out_done  = out_valid && out_ready && out_last;

    assign err = cfg_err | w_err | p_err;
endmodule

`default_nettype wire
