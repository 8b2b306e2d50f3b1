/*
 * vec_end.h — forget the vector vocabulary after a body has been compiled,
 * so the next width can define it again.  Included only by vec_widths.h.
 */
#undef VEC_T
#undef VEC_LANES
#undef VEC_LOG2_LANES
#undef VEC_TARGET
#undef VEC
#undef VEC_HALF
#undef VEC_LOAD
#undef VEC_STORE
#undef VEC_LOAD_FIRST
#undef VEC_LOAD_QUARTER
#undef VEC_BCAST128
#undef VEC_BCAST256
#undef VEC_WIDEN
#undef VEC_ZERO
#undef VEC_SET1
#undef VEC_SET1_64
#undef VEC_ADD32
#undef VEC_SUB32
#undef VEC_MIN32
#undef VEC_ADD64
#undef VEC_SUB64
#undef VEC_SRL64
#undef VEC_MUL_EVN
#undef VEC_XOR
#undef VEC_ROTL32
#undef VEC_MOVEHDUP
#undef VEC_BLEND32
#undef VEC_HIGH_WORDS
#undef VEC_SHUFFLE32
#undef VEC_ALIGNR
#undef VEC_PERMUTE32
#undef VEC_UNPACKLO64
#undef VEC_UNPACKHI64
#undef VEC_LO_HALVES
#undef VEC_HI_HALVES
#undef VEC_EVEN_LANES128
#undef VEC_ODD_LANES128
#undef VEC_MASK_T
#undef VEC_MASK
#undef VEC_SELECT
#undef VEC_TRANSPOSE
