void main () {
    int x = ;
}
