/// GPTQ (Frantar et al. 2023): each column quantized with its group's scale
/// and zero (taken from the weights as the walk reaches the group, or all
/// before it with static groups), in descending diag(H) order with
/// act-order, its rounding error spread over the columns to come.
public struct GPTQ: LayerCompressor {
    public var quantizer: QuantizerSpec
    public var actOrder = false
    public var staticGroups = false
    public var blocksize = 128
    public var percdamp: Float = 0.01

    public init(quantizer: QuantizerSpec, actOrder: Bool = false, staticGroups: Bool = false, blocksize: Int = 128, percdamp: Float = 0.01) {
        self.quantizer = quantizer
        self.actOrder = actOrder
        self.staticGroups = staticGroups
        self.blocksize = blocksize
        self.percdamp = percdamp
    }

    public static var needs: CalibrationNeed { .hessian }

    var walk: OBSColumnWalk {
        OBSColumnWalk(quantizer: quantizer, actOrder: actOrder, staticGroups: staticGroups, blocksize: blocksize, percdamp: percdamp)
    }

    public func compress(_ w: Matrix, stats: HessianAccumulator?) throws -> CompressedLinear {
        guard let stats, stats.full else { throw KickError("gptq needs the inputs' Hessian") }
        return try walk.compress(w, hessian: stats.H)
    }
}
